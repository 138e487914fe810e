//! The terminal UI in a real terminal: a detached tmux session (80×24) driven by key presses,
//! its screen read back (rendering is asynchronous: wait for text, never fixed sleeps).

use std::process::Command;
use std::time::{Duration, Instant};

/// A detached tmux session running one command.
pub struct Tmux {
    /// The session name.
    pub name: String,
}

impl Tmux {
    /// A detached 80×24 tmux session running `cmd` (then printing its exit code and waiting,
    /// so the last screen stays readable).
    pub fn start(tag: &str, cmd: &str) -> Tmux {
        let name = format!("conclave-{tag}-{}", std::process::id());
        let shell = format!("{cmd}; echo EXIT=$?; sleep 600");
        let ok = Command::new("tmux")
            .args(["new-session", "-d", "-s", &name, "-x", "80", "-y", "24"])
            .arg(shell)
            .status()
            .expect("tmux (make test installs it)");
        assert!(ok.success());
        Tmux { name }
    }

    pub fn screen(&self) -> String {
        let out = Command::new("tmux")
            .args(["capture-pane", "-p", "-t", &self.name])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The screen with its colours and attributes (`capture-pane -e`: SGR sequences only).
    pub fn styled_screen(&self) -> String {
        let out = Command::new("tmux")
            .args(["capture-pane", "-p", "-e", "-t", &self.name])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The pane's title as the terminal keeps it (an OSC 0/2 sequence reaching the pane
    /// changes it).
    pub fn title(&self) -> String {
        let out = Command::new("tmux")
            .args(["display-message", "-p", "-t", &self.name, "#{pane_title}"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim_end().to_string()
    }

    /// Copy every byte the program writes to the pane from now on into `log` (`pipe-pane`).
    pub fn log_output(&self, log: &std::path::Path) {
        let ok = Command::new("tmux")
            .args(["pipe-pane", "-o", "-t", &self.name])
            .arg(format!("cat >> '{}'", log.display()))
            .status()
            .unwrap();
        assert!(ok.success());
    }

    pub fn send(&self, keys: &[&str]) {
        let ok = Command::new("tmux")
            .args(["send-keys", "-t", &self.name])
            .args(keys)
            .status()
            .unwrap();
        assert!(ok.success());
    }

    /// Type literal text.
    pub fn type_text(&self, text: &str) {
        let ok = Command::new("tmux")
            .args(["send-keys", "-l", "-t", &self.name, text])
            .status()
            .unwrap();
        assert!(ok.success());
    }

    /// Wait until the screen shows `text` (rendering is asynchronous) and no job runs: the
    /// screen under a "working: ..." or "recording: ..." line may already show the text while
    /// the step it belongs to is still being opened or written, and a key sent then is ignored
    /// ([`Tmux::idle_screen`]).
    pub fn wait_for(&self, text: &str) -> String {
        let start = Instant::now();
        loop {
            let s = self.screen();
            if s.contains(text) && !busy(&s) {
                return s;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "the screen never showed {text:?}; it shows:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Wait until the screen shows `words` in order, wherever lines wrap, and no job runs.
    pub fn wait_for_words(&self, words: &str) -> String {
        let want: Vec<&str> = words.split_whitespace().collect();
        let start = Instant::now();
        loop {
            let s = self.screen();
            let flat: Vec<&str> = s.split_whitespace().collect();
            if flat.windows(want.len()).any(|w| w == want.as_slice()) && !busy(&s) {
                return s;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "the screen never showed {words:?}; it shows:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// A new ceremony opens with its welcome over the first step: check it, Enter begins, and
    /// wait for the parameters screen without it.
    pub fn begin(&self) -> String {
        let s = self.wait_for("┌ Welcome ");
        assert!(
            s.contains("Purpose, read aloud") && s.contains("Enter begin"),
            "{s}"
        );
        self.send(&["Enter"]);
        let start = Instant::now();
        loop {
            let s = self.screen();
            if !s.contains("┌ Welcome ") && s.contains("Parameters of this ceremony") {
                return s;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "Enter did not begin the ceremony; the screen shows:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The opening steps every ceremony shares, from the parameters screen ([`Tmux::begin`]):
    /// the parameters confirmed as they stand, the tamper-evident bag serial `bag` typed, the
    /// air-gap and clock steps confirmed (practice: warnings), and the roll call's names
    /// (administrator, keyholders, witnesses) typed and confirmed.
    pub fn open_with_roll_call(&self, bag: &str, names: [&str; 3]) {
        self.send(&["Enter"]);
        self.wait_for("│ y  yes");
        self.send(&["y"]);
        self.wait_for("Tamper-evident bag serial");
        self.send(&["e"]);
        self.wait_for("Enter: done");
        self.type_text(bag);
        self.send(&["Enter"]);
        for _ in 0..4 {
            let s = self.screen();
            if s.contains("Names as they will stand") {
                break;
            }
            self.send(&["Enter"]);
            self.wait_for("│ y  yes");
            self.send(&["y"]);
            self.wait_change(&s);
        }
        self.wait_for("Names as they will stand");
        for (i, text) in names.iter().enumerate() {
            if i > 0 {
                self.send(&["Down"]);
            }
            self.send(&["e"]);
            self.wait_for("Enter: done");
            self.type_text(text);
            self.send(&["Enter"]);
            // A long list of names wraps: compare word by word.
            self.wait_for_words(text);
        }
        self.send(&["Enter"]);
        self.wait_for("│ y  yes");
        self.send(&["y"]);
    }

    /// The screen once no job runs: while a token works ("working: ...") or a step is written
    /// to the transcript ("recording: ...") the UI answers only `?`, Esc and Ctrl-C, so a key
    /// sent then would be ignored, or land on the next screen if the job ends just before it.
    pub fn idle_screen(&self) -> String {
        let start = Instant::now();
        loop {
            let s = self.screen();
            if !busy(&s) || start.elapsed() > Duration::from_secs(60) {
                return s;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Wait until the screen changes from `before` (and no job runs).
    pub fn wait_change(&self, before: &str) -> String {
        let start = Instant::now();
        loop {
            let s = self.screen();
            if busy(&s) && start.elapsed() < Duration::from_secs(60) {
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
            if s != before {
                // Let the frame settle; a job that started meanwhile is waited for (before:
                // its screen was returned, e.g. a review redrawn under a two-row "recording:"
                // line, taken for a page of the review).
                std::thread::sleep(Duration::from_millis(150));
                let settled = self.screen();
                if !busy(&settled) || start.elapsed() > Duration::from_secs(60) {
                    return settled;
                }
                continue;
            }
            if start.elapsed() > Duration::from_secs(20) {
                return s;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn kill(&self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.name])
            .stderr(std::process::Stdio::null())
            .status();
    }
}

/// Whether the screen shows a job running: a token working or a step being recorded.
fn busy(screen: &str) -> bool {
    screen.contains("working: ") || screen.contains("recording: ") || screen.contains("reading: ")
}

impl Drop for Tmux {
    fn drop(&mut self) {
        self.kill();
    }
}
