//! `make bench` only (ignored in `make test`): time tough 0.24 loading the benchmark repository
//! that `tests/bench/run.sh` generated into `bench-out/`, next to `conclave verify` on the same
//! files, so the figures for both reference clients come from one machine and one run.

use std::time::{Duration, Instant};

fn bench_dir() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("bench-out")
}

#[tokio::test]
#[ignore = "benchmark: run by `make bench` after tests/bench/run.sh generated bench-out/"]
async fn tough_loads_the_bench_repository() {
    let dir = bench_dir();
    let metadata = dir.join("metadata");
    let root = std::fs::read(metadata.join("1.root.json")).expect("run tests/bench/run.sh first");
    let m = url::Url::from_directory_path(&metadata).unwrap();
    let t = url::Url::from_directory_path(dir.join("targets")).unwrap();
    let mut best = Duration::MAX;
    for _ in 0..3 {
        let start = Instant::now();
        let repo = tough::RepositoryLoader::new(&root, m.clone(), t.clone())
            .expiration_enforcement(tough::ExpirationEnforcement::Unsafe)
            .load()
            .await
            .expect("tough loads the bench repository");
        let n = repo.targets().signed.targets.len();
        let took = start.elapsed();
        assert!(n >= 100_000, "{n} targets");
        best = best.min(took);
    }
    let conclave = env!("CARGO_BIN_EXE_conclave");
    let mut best_conclave = Duration::MAX;
    for _ in 0..3 {
        let start = Instant::now();
        let out = std::process::Command::new(conclave)
            .args(["verify", "--trusted-root"])
            .arg(metadata.join("1.root.json"))
            .arg("--repo")
            .arg(&metadata)
            .args(["--at", "2030-01-01T00:00:00Z"])
            .output()
            .unwrap();
        assert!(out.status.success());
        best_conclave = best_conclave.min(start.elapsed());
    }
    println!(
        "tough 0.24 (in process, load + verify): best of 3 {:.3} s; conclave verify (process): best of 3 {:.3} s; ratio {:.1}x",
        best.as_secs_f64(),
        best_conclave.as_secs_f64(),
        best.as_secs_f64() / best_conclave.as_secs_f64()
    );
}
