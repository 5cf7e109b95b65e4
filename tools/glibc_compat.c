/*
 * Binds the extension's glibc references to versions glibc 2.17 has and keeps
 * its libstdc++ needs at GCC 6's, so the wheel is manylinux_2_24 (and so 2_28,
 * RHEL 8 and later) although it is linked against Debian 12's glibc 2.36 and
 * GCC 12's libstdc++. docs/packaging.md says what blocks manylinux2014.
 *
 * Every reference in the link (our objects, SwiftNIO's and the static Swift
 * runtime's) that the newer headers sent to a symbol version newer than 2.17
 * resolves to the hidden definition here instead, which calls the same
 * function under its old version. The old versions are the same code in
 * glibc 2.34+ (pthread and libdl moved into libc and got new versions; exp,
 * log, exp2, log2 (2.29), expf, exp2f, logf, log2f, powf (2.27) and hypotf
 * (2.35) only dropped the SVID error wrappers). stat/fstat/lstat exist as functions only since 2.33; before
 * they were inline calls to __xstat, which every x86_64 glibc exports.
 *
 * setup.py compiles this and links it in on x86_64 glibc Linux; tools/wheels.py
 * checks the result with auditwheel. Names and versions are from
 * `objdump -T` of the extension and of glibc 2.36's libc.so.6 and libm.so.6.
 */
#if defined(__x86_64__) && defined(__linux__)

#include <stddef.h>

struct stat;
struct timespec;

#define HIDDEN __attribute__((visibility("hidden")))
/* OLD(name, version) declares name_old bound to name@version. */
#define OLD(name, version) __asm__(".symver " #name "_old, " #name "@" version)

/* glibc 2.34: libpthread and libdl moved into libc. */
#define FORWARD(ret, name, version, params, args) \
    OLD(name, version);                           \
    extern ret name##_old params;                 \
    HIDDEN ret name params { return name##_old args; }

typedef unsigned long pthread_t_;
typedef unsigned int pthread_key_t_;

FORWARD(int, pthread_create, "GLIBC_2.2.5", (void *t, const void *a, void *(*f)(void *), void *arg), (t, a, f, arg))
FORWARD(int, pthread_join, "GLIBC_2.2.5", (pthread_t_ t, void **r), (t, r))
FORWARD(int, pthread_detach, "GLIBC_2.2.5", (pthread_t_ t), (t))
FORWARD(int, pthread_kill, "GLIBC_2.2.5", (pthread_t_ t, int s), (t, s))
FORWARD(int, pthread_sigmask, "GLIBC_2.2.5", (int how, const void *set, void *old), (how, set, old))
FORWARD(int, pthread_key_create, "GLIBC_2.2.5", (pthread_key_t_ *k, void (*d)(void *)), (k, d))
FORWARD(int, pthread_key_delete, "GLIBC_2.2.5", (pthread_key_t_ k), (k))
FORWARD(void *, pthread_getspecific, "GLIBC_2.2.5", (pthread_key_t_ k), (k))
FORWARD(int, pthread_setspecific, "GLIBC_2.2.5", (pthread_key_t_ k, const void *v), (k, v))
FORWARD(int, pthread_mutexattr_init, "GLIBC_2.2.5", (void *a), (a))
FORWARD(int, pthread_mutexattr_destroy, "GLIBC_2.2.5", (void *a), (a))
FORWARD(int, pthread_mutexattr_settype, "GLIBC_2.2.5", (void *a, int t), (a, t))
FORWARD(int, pthread_condattr_setclock, "GLIBC_2.3.3", (void *a, int c), (a, c))
FORWARD(int, pthread_attr_getstack, "GLIBC_2.2.5", (const void *a, void **s, size_t *n), (a, s, n))
FORWARD(int, pthread_getattr_np, "GLIBC_2.2.5", (pthread_t_ t, void *a), (t, a))
FORWARD(int, pthread_getaffinity_np, "GLIBC_2.3.4", (pthread_t_ t, size_t n, void *c), (t, n, c))
FORWARD(int, pthread_setaffinity_np, "GLIBC_2.3.4", (pthread_t_ t, size_t n, const void *c), (t, n, c))
FORWARD(int, pthread_getname_np, "GLIBC_2.12", (pthread_t_ t, char *b, size_t n), (t, b, n))
FORWARD(int, pthread_setname_np, "GLIBC_2.12", (pthread_t_ t, const char *b), (t, b))
/* BoringSSL's one-time initialisation and locks (the TLS target, docs/tls.md). */
FORWARD(int, pthread_once, "GLIBC_2.2.5", (int *o, void (*f)(void)), (o, f))
FORWARD(int, pthread_rwlock_destroy, "GLIBC_2.2.5", (void *l), (l))
FORWARD(int, pthread_rwlock_rdlock, "GLIBC_2.2.5", (void *l), (l))
FORWARD(int, pthread_rwlock_wrlock, "GLIBC_2.2.5", (void *l), (l))
FORWARD(int, pthread_rwlock_unlock, "GLIBC_2.2.5", (void *l), (l))
FORWARD(int, sem_init, "GLIBC_2.2.5", (void *s, int p, unsigned v), (s, p, v))
FORWARD(int, sem_destroy, "GLIBC_2.2.5", (void *s), (s))
FORWARD(int, sem_wait, "GLIBC_2.2.5", (void *s), (s))
FORWARD(int, sem_timedwait, "GLIBC_2.2.5", (void *s, const struct timespec *t), (s, t))
FORWARD(int, sem_post, "GLIBC_2.2.5", (void *s), (s))
FORWARD(void *, dlopen, "GLIBC_2.2.5", (const char *f, int m), (f, m))
FORWARD(void *, dlsym, "GLIBC_2.2.5", (void *h, const char *s), (h, s))
FORWARD(char *, dlerror, "GLIBC_2.2.5", (void), ())
FORWARD(int, dladdr, "GLIBC_2.2.5", (const void *a, void *i), (a, i))

/* sem_open is variadic (mode and value follow O_CREAT); pass them on. */
OLD(sem_open, "GLIBC_2.2.5");
extern void *sem_open_old(const char *name, int flags, ...);
HIDDEN void *sem_open(const char *name, int flags, unsigned mode, unsigned value) {
    return sem_open_old(name, flags, mode, value);
}

/* glibc 2.27/2.29/2.35: the same functions without the SVID error wrappers. */
FORWARD(float, expf, "GLIBC_2.2.5", (float x), (x))
FORWARD(float, exp2f, "GLIBC_2.2.5", (float x), (x))
FORWARD(float, logf, "GLIBC_2.2.5", (float x), (x))
FORWARD(float, log2f, "GLIBC_2.2.5", (float x), (x))
FORWARD(float, powf, "GLIBC_2.2.5", (float x, float y), (x, y))
FORWARD(double, exp, "GLIBC_2.2.5", (double x), (x))
FORWARD(double, exp2, "GLIBC_2.2.5", (double x), (x))
FORWARD(double, log, "GLIBC_2.2.5", (double x), (x))
FORWARD(double, log2, "GLIBC_2.2.5", (double x), (x))
FORWARD(float, hypotf, "GLIBC_2.2.5", (float x, float y), (x, y))

/* glibc 2.33: stat, fstat and lstat became functions; before, the headers
 * called __xstat and friends with _STAT_VER (1 on x86_64). */
#define STAT_VER 1
OLD(__xstat, "GLIBC_2.2.5");
OLD(__fxstat, "GLIBC_2.2.5");
OLD(__lxstat, "GLIBC_2.2.5");
extern int __xstat_old(int v, const char *p, struct stat *b);
extern int __fxstat_old(int v, int fd, struct stat *b);
extern int __lxstat_old(int v, const char *p, struct stat *b);
HIDDEN int stat(const char *p, struct stat *b) { return __xstat_old(STAT_VER, p, b); }
HIDDEN int fstat(int fd, struct stat *b) { return __fxstat_old(STAT_VER, fd, b); }
HIDDEN int lstat(const char *p, struct stat *b) { return __lxstat_old(STAT_VER, p, b); }

/* GLIBCXX_3.4.29 (GCC 11): std::__throw_bad_array_new_length(), called by the
 * Swift runtime's C++ only when a new[] size overflows. Throwing its base
 * class, std::bad_alloc (GLIBCXX_3.4), keeps the libstdc++ requirement at
 * GCC 8's. */
extern void _ZSt17__throw_bad_allocv(void) __attribute__((noreturn));
HIDDEN __attribute__((noreturn)) void _ZSt28__throw_bad_array_new_lengthv(void) {
    _ZSt17__throw_bad_allocv();
}


/* CXXABI_1.3.11 (GCC 7): the aligned operator new and sized aligned delete the
 * Swift runtime uses. Both are ours, so whatever one allocates the other frees;
 * libstdc++'s are the same pair (aligned allocation, free) plus a new_handler
 * loop that nothing here installs a handler for. Without them the policy would
 * stop at manylinux_2_27 (2_24 and 2_26 allow CXXABI 1.3.10). */
extern int posix_memalign(void **out, size_t alignment, size_t size);
extern void free(void *p);
HIDDEN void *_ZnwmSt11align_val_t(size_t size, size_t alignment) {
    void *p = NULL;
    if (size == 0) size = 1;
    if (alignment < sizeof(void *)) alignment = sizeof(void *);
    if (posix_memalign(&p, alignment, size) != 0) _ZSt17__throw_bad_allocv();
    return p;
}
HIDDEN void _ZdlPvmSt11align_val_t(void *p, size_t size, size_t alignment) {
    (void)size;
    (void)alignment;
    free(p);
}

#endif
