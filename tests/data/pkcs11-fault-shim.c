/* A PKCS#11 module that forwards to a real one (SoftHSM2) and injects one fault, chosen by the
 * environment variable CONCLAVE_FAULT, so that tests can reach the error paths a real token
 * takes but SoftHSM2 never does:
 *
 *   sign-removed     C_Sign returns CKR_DEVICE_REMOVED (token pulled mid-signature)
 *   login-locked     C_Login returns CKR_PIN_LOCKED
 *   flags-locked     C_GetTokenInfo reports CKF_USER_PIN_LOCKED
 *   final-try        C_Login returns CKR_PIN_INCORRECT and C_GetTokenInfo reports
 *                    CKF_USER_PIN_COUNT_LOW | CKF_USER_PIN_FINAL_TRY
 *   no-eddsa         C_GetMechanismList omits CKM_EC_EDWARDS_KEY_PAIR_GEN and CKM_EDDSA
 *   sign-corrupt     C_Sign succeeds but flips one bit of the signature (a token that
 *                    returns a bad signature: it must be caught, never written)
 *   ed-name-only     C_GenerateKeyPair refuses the Ed25519 OID in CKA_EC_PARAMS with
 *                    CKR_CURVE_NOT_SUPPORTED (tokens that want the name "edwards25519")
 *
 * The real module is CONCLAVE_SHIM_TARGET (default /usr/lib/softhsm/libsofthsm2.so).
 * Build: cc -shared -fPIC -o shim.so pkcs11-fault-shim.c -ldl
 * Only PKCS#11 2.40 (C_GetFunctionList); the function list layout is the standard one. Test code. */
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

typedef unsigned long CK_ULONG;
typedef CK_ULONG CK_RV;
typedef struct { unsigned char major, minor; } CK_VERSION;
typedef struct { CK_VERSION version; void *fn[68]; } CK_FUNCTION_LIST;
typedef struct { CK_ULONG type; void *value; CK_ULONG len; } CK_ATTRIBUTE;
typedef struct { CK_ULONG mechanism; void *param; CK_ULONG len; } CK_MECHANISM;

enum { I_GETTOKENINFO = 6, I_GETMECHLIST = 7, I_LOGIN = 18, I_SIGN = 43, I_GENKEYPAIR = 59 };

static CK_FUNCTION_LIST real_copy, shim;
static CK_FUNCTION_LIST *real;

static int fault(const char *name) {
    const char *f = getenv("CONCLAVE_FAULT");
    return f && strcmp(f, name) == 0;
}

typedef CK_RV (*get_token_info_t)(CK_ULONG, unsigned char *);
static CK_RV shim_get_token_info(CK_ULONG slot, unsigned char *info) {
    CK_RV rv = ((get_token_info_t)real->fn[I_GETTOKENINFO])(slot, info);
    if (rv == 0) {
        CK_ULONG *flags = (CK_ULONG *)(info + 96);
        if (fault("flags-locked")) *flags |= 0x40000UL;
        if (fault("final-try")) *flags |= 0x10000UL | 0x20000UL;
    }
    return rv;
}

typedef CK_RV (*get_mech_list_t)(CK_ULONG, CK_ULONG *, CK_ULONG *);
static CK_RV shim_get_mech_list(CK_ULONG slot, CK_ULONG *list, CK_ULONG *count) {
    CK_RV rv = ((get_mech_list_t)real->fn[I_GETMECHLIST])(slot, list, count);
    if (rv == 0 && list && fault("no-eddsa")) {
        CK_ULONG out = 0;
        for (CK_ULONG i = 0; i < *count; i++)
            if (list[i] != 0x1055UL && list[i] != 0x1057UL) list[out++] = list[i];
        *count = out;
    }
    return rv;
}

typedef CK_RV (*login_t)(CK_ULONG, CK_ULONG, unsigned char *, CK_ULONG);
static CK_RV shim_login(CK_ULONG s, CK_ULONG user, unsigned char *pin, CK_ULONG len) {
    if (fault("login-locked")) return 0xA4UL;
    if (fault("final-try")) return 0xA0UL;
    return ((login_t)real->fn[I_LOGIN])(s, user, pin, len);
}

typedef CK_RV (*sign_t)(CK_ULONG, unsigned char *, CK_ULONG, unsigned char *, CK_ULONG *);
static CK_RV shim_sign(CK_ULONG s, unsigned char *d, CK_ULONG dl, unsigned char *sig, CK_ULONG *sl) {
    if (fault("sign-removed")) return 0x32UL;
    CK_RV rv = ((sign_t)real->fn[I_SIGN])(s, d, dl, sig, sl);
    if (rv == 0 && sig && sl && *sl > 0 && fault("sign-corrupt")) sig[*sl / 2] ^= 0x01;
    return rv;
}

typedef CK_RV (*genkp_t)(CK_ULONG, CK_MECHANISM *, CK_ATTRIBUTE *, CK_ULONG, CK_ATTRIBUTE *,
                         CK_ULONG, CK_ULONG *, CK_ULONG *);
static CK_RV shim_genkp(CK_ULONG s, CK_MECHANISM *m, CK_ATTRIBUTE *pub, CK_ULONG npub,
                        CK_ATTRIBUTE *priv, CK_ULONG npriv, CK_ULONG *hpub, CK_ULONG *hpriv) {
    static const unsigned char oid[] = {0x06, 0x03, 0x2b, 0x65, 0x70};
    if (fault("ed-name-only"))
        for (CK_ULONG i = 0; i < npub; i++)
            if (pub[i].type == 0x180UL && pub[i].len == sizeof oid &&
                memcmp(pub[i].value, oid, sizeof oid) == 0)
                return 0x140UL;
    return ((genkp_t)real->fn[I_GENKEYPAIR])(s, m, pub, npub, priv, npriv, hpub, hpriv);
}

CK_RV C_GetFunctionList(CK_FUNCTION_LIST **out) {
    if (!real) {
        const char *path = getenv("CONCLAVE_SHIM_TARGET");
        void *lib = dlopen(path ? path : "/usr/lib/softhsm/libsofthsm2.so", RTLD_NOW | RTLD_LOCAL);
        if (!lib) return 0x5UL; /* CKR_GENERAL_ERROR */
        CK_RV (*get)(CK_FUNCTION_LIST **) =
            (CK_RV(*)(CK_FUNCTION_LIST **))dlsym(lib, "C_GetFunctionList");
        CK_FUNCTION_LIST *list = NULL;
        if (!get || get(&list) != 0 || !list) return 0x5UL;
        real_copy = *list;
        real = &real_copy;
        shim = *list;
        shim.fn[3] = (void *)C_GetFunctionList;
        shim.fn[I_GETTOKENINFO] = (void *)shim_get_token_info;
        shim.fn[I_GETMECHLIST] = (void *)shim_get_mech_list;
        shim.fn[I_LOGIN] = (void *)shim_login;
        shim.fn[I_SIGN] = (void *)shim_sign;
        shim.fn[I_GENKEYPAIR] = (void *)shim_genkp;
    }
    *out = &shim;
    return 0;
}
