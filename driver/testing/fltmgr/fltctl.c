/*
 * fltctl.exe — the Wine test's client of the filter-manager double
 * (fltmgr.c). TEST ONLY: never shipped. Prints key=value lines.
 *
 *   fltctl info
 *   fltctl op [--create] [--disk] [--kernel] [--relative] [--block] [--async] [--hold]
 *             [--name NAME] [--pad-to-bytes N]
 *   fltctl async-wait [--release]
 *   fltctl window open|close
 *   fltctl stress --threads N [--ops M] [--kernel-every-4th] --entry KIND:FLAGS:NAME ...
 *                 [--until-file PATH] [--max-seconds S] [--rate N[/s] --duration S [--burst B]]
 *   fltctl stress-end [--stop]
 *   fltctl rate --rate N[/s] --duration S [--threads T] [--burst B] --entry KIND:FLAGS:NAME ...
 *
 * NAME: the pipe name's UTF-16 units; `\u{XXXX}` inserts any unit (an
 * embedded NUL, an unpaired surrogate). --pad-to-bytes N appends 'x' units
 * up to exactly N bytes (an odd N ends with half a unit): FileName.Length
 * is then N. KIND: pipe (IRP_MJ_CREATE_NAMED_PIPE) or create (IRP_MJ_CREATE);
 * FLAGS: any of r (relative to the NPFS root), b (a block rule's name), or -.
 *
 * stress --rate: the double's threads share one token bucket (N tokens a
 * second, at most B (default: the threads) saved up) and stop after S
 * seconds of tokens (or M ops each, or stress-end --stop). Without
 * --until-file the client waits for the run with reports that never wait
 * in the double (winedevice serves the driver's requests on one thread).
 *
 * rate: a known offered load from this process's own threads: T threads
 * (default 4, at most 64), each with its own handle, issue synchronous
 * user-mode operations (the OP request: the requestor is this process;
 * winedevice serves each on its one request thread) paced by one token
 * bucket over QueryPerformanceCounter: N tokens a second (at most 100000),
 * at most B (default T) saved up while the threads were behind, for S
 * seconds (at most 600). Operation k of the run uses entry k % entries.
 * Prints rate.* lines: the offered rate, operations issued and their
 * outcomes, the rate achieved, how late the latest operation started.
 *
 * Exit status: 0 when the request was answered, 1 otherwise (2: usage).
 */
#include "fltdouble.h"
#include <stdio.h>
#include <stdlib.h>
#include <wchar.h>

static HANDLE open_double(void)
{
    HANDLE h = CreateFileW(FLTD_USER_PATH, GENERIC_READ | GENERIC_WRITE, 0, NULL, OPEN_EXISTING, 0, NULL);
    if (h == INVALID_HANDLE_VALUE)
    {
        printf("error=cannot open %ls (%lu): the filter-manager double is not loaded\n", FLTD_USER_PATH,
               GetLastError());
        exit(1);
    }
    return h;
}

static void header(FLTD_HEADER *h, USHORT size)
{
    h->Magic = FLTD_MAGIC;
    h->Version = FLTD_VERSION;
    h->Size = size;
}

static DWORD ioctl(HANDLE h, DWORD code, void *in, DWORD in_len, void *out, DWORD out_len)
{
    DWORD got = 0;
    if (!DeviceIoControl(h, code, in, in_len, out, out_len, &got, NULL))
    {
        printf("error=ioctl 0x%lx failed (%lu)\n", code, GetLastError());
        exit(1);
    }
    return got;
}

/* Parses NAME (with \u{XXXX} escapes) into UTF-16 units; returns the count. */
static size_t parse_name(const wchar_t *s, wchar_t *out, size_t cap)
{
    size_t n = 0;
    while (*s && n < cap)
    {
        if (s[0] == L'\\' && s[1] == L'u' && s[2] == L'{')
        {
            wchar_t *end;
            unsigned long v = wcstoul(s + 3, &end, 16);
            if (*end == L'}' && v <= 0xFFFF)
            {
                out[n++] = (wchar_t)v;
                s = end + 1;
                continue;
            }
        }
        out[n++] = *s++;
    }
    return n;
}

/* Name bytes: the units, padded with 'x' to `pad` bytes when pad > 0. */
static DWORD build_name(const wchar_t *spec, long pad, UCHAR *out, DWORD cap)
{
    static wchar_t units[FLTD_MAX_NAME_BYTES / 2 + 1];
    size_t n = parse_name(spec ? spec : L"", units, sizeof(units) / sizeof(units[0]));
    DWORD bytes = (DWORD)(n * 2);
    if (bytes > cap) bytes = cap;
    memcpy(out, units, bytes);
    if (pad > 0)
    {
        if ((DWORD)pad > cap) pad = cap;
        for (; bytes < (DWORD)pad; bytes++) out[bytes] = (bytes % 2) ? 0 : 'x';
        bytes = (DWORD)pad;
    }
    return bytes;
}

static const char *outcome_name(ULONG o)
{
    switch (o)
    {
    case FLTD_OUTCOME_CALLBACK: return "callback";
    case FLTD_OUTCOME_NOT_ATTACHED: return "not-attached";
    case FLTD_OUTCOME_UNFILTERED: return "unfiltered";
    case FLTD_OUTCOME_QUEUED: return "queued";
    case FLTD_OUTCOME_FAILED: return "failed";
    default: return "?";
    }
}

static const char *preop_name(LONG p)
{
    switch (p)
    {
    case -1: return "none";
    case 0: return "success_with_callback";
    case 1: return "success_no_callback";
    case 2: return "pending";
    case 3: return "disallow_fastio";
    case 4: return "complete";
    case 5: return "synchronize";
    case 6: return "disallow_fsfilter_io";
    default: return "invalid";
    }
}

static void print_result(const char *prefix, const FLTD_OP_RESULT *r)
{
    printf("%soutcome=%s\n", prefix, outcome_name(r->Outcome));
    printf("%spreop=%s\n", prefix, preop_name(r->PreopStatus));
    printf("%sstatus=0x%08lx\n", prefix, (unsigned long)r->IoStatus);
    printf("%sinformation=%llu\n", prefix, (unsigned long long)r->Information);
    printf("%sviolations=0x%lx\n", prefix, (unsigned long)r->Violations);
    printf("%srequestor_pid=%lu\n", prefix, (unsigned long)r->RequestorPid);
    printf("%scallback_us=%lu\n", prefix, (unsigned long)r->CallbackMicros);
}

static void print_tally(const FLTD_TALLY *t)
{
    printf("stress.started=%llu\n", (unsigned long long)t->Started);
    printf("stress.callbacks=%llu\n", (unsigned long long)t->Callbacks);
    printf("stress.not_attached=%llu\n", (unsigned long long)t->NotAttached);
    printf("stress.unfiltered=%llu\n", (unsigned long long)t->Unfiltered);
    printf("stress.failed=%llu\n", (unsigned long long)t->Failed);
    printf("stress.denied=%llu\n", (unsigned long long)t->Denied);
    printf("stress.allowed=%llu\n", (unsigned long long)t->Allowed);
    printf("stress.kernel_ops=%llu\n", (unsigned long long)t->KernelOps);
    printf("stress.violations=%llu\n", (unsigned long long)t->Violations);
    printf("stress.block_in_window=%llu\n", (unsigned long long)t->BlockInWindow);
    printf("stress.block_leaks=%llu\n", (unsigned long long)t->BlockLeaks);
    printf("stress.max_callback_us=%llu\n", (unsigned long long)t->MaxCallbackMicros);
    printf("stress.elapsed_us=%llu\n", (unsigned long long)t->ElapsedMicros);
    printf("stress.callbacks_per_second=%llu\n",
           t->ElapsedMicros ? (unsigned long long)(t->Callbacks * 1000000ull / t->ElapsedMicros) : 0ull);
}

static int usage(void)
{
    printf("usage: fltctl info | op [...] | async-wait [--release] | window open|close | stress ... | stress-end [--stop]"
           " | rate --rate N[/s] --duration S [--threads T] [--burst B] --entry KIND:FLAGS:NAME ...\n");
    return 2;
}

static int cmd_info(HANDLE h)
{
    FLTD_HEADER req;
    FLTD_INFO i;
    ULONG k;
    static const char *vol[FLTD_VOLUMES] = {"npfs", "disk"};
    header(&req, sizeof(req));
    ioctl(h, FLTD_IOCTL_INFO, &req, sizeof(req), &i, sizeof(i));
    printf("filter_handle=0x%llx\n", (unsigned long long)i.FilterHandle);
    printf("registered=%lu\n", (unsigned long)i.Registered);
    printf("filtering=%lu\n", (unsigned long)i.Filtering);
    printf("registration.size=%lu\n", (unsigned long)i.RegistrationSize);
    printf("registration.version=0x%lx\n", (unsigned long)i.RegistrationVersion);
    printf("registration.flags=0x%lx\n", (unsigned long)i.RegistrationFlags);
    printf("registration.problems=0x%lx\n", (unsigned long)i.RegistrationProblems);
    printf("registration.unload_installed=%lu\n", (unsigned long)i.UnloadInstalled);
    printf("registration.filter_unload=%lu\n", (unsigned long)i.HasFilterUnload);
    printf("registration.instance_setup=%lu\n", (unsigned long)i.HasInstanceSetup);
    printf("registration.query_teardown=%lu\n", (unsigned long)i.HasQueryTeardown);
    printf("registration.contexts=%lu\n", (unsigned long)i.HasContexts);
    printf("operations=%lu\n", (unsigned long)i.OperationCount);
    for (k = 0; k < i.OperationCount && k < FLTD_MAX_OPERATIONS; k++)
        printf("operation.%lu=major:%u pre:%u post:%u\n", (unsigned long)k, i.OperationMajor[k], i.OperationHasPre[k],
               i.OperationHasPost[k]);
    for (k = 0; k < FLTD_VOLUMES; k++)
    {
        printf("instance.%s.setup=0x%08lx\n", vol[k], (unsigned long)i.InstanceSetupStatus[k]);
        printf("instance.%s.attached=%lu\n", vol[k], (unsigned long)i.Attached[k]);
    }
    printf("caller_pid=%lu\n", (unsigned long)i.CallerPid);
    printf("self_pid=%lu\n", (unsigned long)GetCurrentProcessId());
    printf("in_flight=%lu\n", (unsigned long)i.InFlight);
    printf("held=%lu\n", (unsigned long)i.Held);
    printf("async_queued=%lu\n", (unsigned long)i.AsyncQueued);
    printf("callbacks_total=%llu\n", (unsigned long long)i.CallbacksTotal);
    printf("requestor_calls=%llu\n", (unsigned long long)i.RequestorCalls);
    printf("pool_live=%llu\n", (unsigned long long)i.PoolLive);
    return 0;
}

static int cmd_op(HANDLE h, int argc, wchar_t **argv)
{
    static UCHAR buf[sizeof(FLTD_OP_REQUEST) + FLTD_MAX_NAME_BYTES];
    FLTD_OP_REQUEST *req = (FLTD_OP_REQUEST *)buf;
    FLTD_OP_RESULT res;
    const wchar_t *name = NULL;
    long pad = 0;
    int a;
    memset(req, 0, sizeof(*req));
    header(&req->Header, sizeof(*req));
    req->MajorFunction = 1; /* IRP_MJ_CREATE_NAMED_PIPE */
    req->Volume = FLTD_VOLUME_NPFS;
    req->RequestorMode = FLTD_USER_MODE;
    for (a = 0; a < argc; a++)
    {
        if (!wcscmp(argv[a], L"--create")) req->MajorFunction = 0;
        else if (!wcscmp(argv[a], L"--disk")) req->Volume = FLTD_VOLUME_DISK;
        else if (!wcscmp(argv[a], L"--kernel")) req->RequestorMode = FLTD_KERNEL_MODE;
        else if (!wcscmp(argv[a], L"--relative")) req->Flags |= FLTD_OP_RELATIVE;
        else if (!wcscmp(argv[a], L"--block")) req->Flags |= FLTD_OP_BLOCK_CLASS;
        else if (!wcscmp(argv[a], L"--async")) req->Flags |= FLTD_OP_ASYNC;
        else if (!wcscmp(argv[a], L"--hold")) req->Flags |= FLTD_OP_HOLD;
        else if (!wcscmp(argv[a], L"--name") && a + 1 < argc) name = argv[++a];
        else if (!wcscmp(argv[a], L"--pad-to-bytes") && a + 1 < argc) pad = wcstol(argv[++a], NULL, 10);
        else return usage();
    }
    req->NameBytes = build_name(name, pad, buf + sizeof(*req), FLTD_MAX_NAME_BYTES);
    ioctl(h, FLTD_IOCTL_OP, buf, sizeof(*req) + req->NameBytes, &res, sizeof(res));
    printf("name_bytes=%lu\n", (unsigned long)req->NameBytes);
    print_result("", &res);
    printf("self_pid=%lu\n", (unsigned long)GetCurrentProcessId());
    return 0;
}

static int cmd_async_wait(HANDLE h, int argc, wchar_t **argv)
{
    FLTD_ASYNC_WAIT w;
    static FLTD_ASYNC_REPORT r;
    ULONG k;
    char prefix[32];
    memset(&w, 0, sizeof(w));
    header(&w.Header, sizeof(w));
    w.Release = argc > 0 && !wcscmp(argv[0], L"--release");
    ioctl(h, FLTD_IOCTL_ASYNC_WAIT, &w, sizeof(w), &r, sizeof(r));
    printf("count=%lu\n", (unsigned long)r.Count);
    for (k = 0; k < r.Count && k < FLTD_MAX_ASYNC; k++)
    {
        snprintf(prefix, sizeof(prefix), "result.%lu.", (unsigned long)k);
        print_result(prefix, &r.Results[k]);
    }
    return 0;
}

static int cmd_window(HANDLE h, int argc, wchar_t **argv)
{
    FLTD_WINDOW w;
    FLTD_HEADER out;
    if (argc != 1 || (wcscmp(argv[0], L"open") && wcscmp(argv[0], L"close"))) return usage();
    memset(&w, 0, sizeof(w));
    header(&w.Header, sizeof(w));
    w.Open = !wcscmp(argv[0], L"open");
    ioctl(h, FLTD_IOCTL_WINDOW, &w, sizeof(w), &out, sizeof(out));
    printf("window=%s\n", w.Open ? "open" : "closed");
    return 0;
}

static int stress_end(HANDLE h, int stop)
{
    FLTD_STRESS_END e;
    FLTD_STRESS_REPORT r;
    memset(&e, 0, sizeof(e));
    header(&e.Header, sizeof(e));
    e.Stop = (ULONG)stop;
    ioctl(h, FLTD_IOCTL_STRESS_END, &e, sizeof(e), &r, sizeof(r));
    printf("stress.threads=%lu\n", (unsigned long)r.Threads);
    printf("stress.running=%lu\n", (unsigned long)r.Running);
    print_tally(&r.Tally);
    return 0;
}

/* KIND:FLAGS:NAME (see the top of this file) -> major function, FLTD_OP_*
 * flags and the name's bytes (at most cap). Returns 0 when it does not parse. */
static int parse_entry(const wchar_t *spec, UCHAR *major, UCHAR *flags, UCHAR *name, DWORD cap, DWORD *bytes)
{
    const wchar_t *c1 = wcschr(spec, L':'), *c2 = c1 ? wcschr(c1 + 1, L':') : NULL, *f;
    if (!c2) return 0;
    if (!wcsncmp(spec, L"pipe:", 5)) *major = 1; /* IRP_MJ_CREATE_NAMED_PIPE */
    else if (!wcsncmp(spec, L"create:", 7)) *major = 0; /* IRP_MJ_CREATE */
    else return 0;
    *flags = 0;
    for (f = c1 + 1; f < c2; f++)
    {
        if (*f == L'r') *flags |= FLTD_OP_RELATIVE;
        else if (*f == L'b') *flags |= FLTD_OP_BLOCK_CLASS;
    }
    *bytes = build_name(c2 + 1, 0, name, cap);
    return 1;
}

/* Threads of the stress run still running (a report that never waits). */
static ULONG stress_peek(HANDLE h)
{
    FLTD_STRESS_END e;
    FLTD_STRESS_REPORT r;
    memset(&e, 0, sizeof(e));
    header(&e.Header, sizeof(e));
    e.Stop = FLTD_STRESS_END_PEEK;
    ioctl(h, FLTD_IOCTL_STRESS_END, &e, sizeof(e), &r, sizeof(r));
    return r.Running;
}

static int cmd_stress(HANDLE h, int argc, wchar_t **argv)
{
    static UCHAR buf[sizeof(FLTD_STRESS_REQUEST) + FLTD_MAX_ENTRIES * (sizeof(FLTD_STRESS_ENTRY) + 1024)];
    FLTD_STRESS_REQUEST *req = (FLTD_STRESS_REQUEST *)buf;
    FLTD_HEADER out;
    UCHAR *p = buf + sizeof(*req);
    const wchar_t *until = NULL;
    long max_seconds = 1800, waited = 0;
    int a;
    memset(req, 0, sizeof(*req));
    header(&req->Header, sizeof(*req));
    for (a = 0; a < argc; a++)
    {
        if (!wcscmp(argv[a], L"--threads") && a + 1 < argc) req->Threads = wcstoul(argv[++a], NULL, 10);
        else if (!wcscmp(argv[a], L"--ops") && a + 1 < argc) req->OpsPerThread = wcstoul(argv[++a], NULL, 10);
        else if (!wcscmp(argv[a], L"--kernel-every-4th")) req->Flags |= FLTD_STRESS_KERNEL_EVERY_4TH;
        else if (!wcscmp(argv[a], L"--until-file") && a + 1 < argc) until = argv[++a];
        else if (!wcscmp(argv[a], L"--max-seconds") && a + 1 < argc) max_seconds = wcstol(argv[++a], NULL, 10);
        else if (!wcscmp(argv[a], L"--rate") && a + 1 < argc)
        {
            wchar_t *end;
            req->RatePerSecond = wcstoul(argv[++a], &end, 10);
            if (*end && wcscmp(end, L"/s")) return usage();
        }
        else if (!wcscmp(argv[a], L"--duration") && a + 1 < argc) req->DurationSeconds = wcstoul(argv[++a], NULL, 10);
        else if (!wcscmp(argv[a], L"--burst") && a + 1 < argc) req->Burst = wcstoul(argv[++a], NULL, 10);
        else if (!wcscmp(argv[a], L"--entry") && a + 1 < argc && req->Entries < FLTD_MAX_ENTRIES)
        {
            FLTD_STRESS_ENTRY e;
            DWORD n;
            memset(&e, 0, sizeof(e));
            if (!parse_entry(argv[++a], &e.MajorFunction, &e.Flags, p + sizeof(e), 1024, &n)) return usage();
            e.NameBytes = (USHORT)n;
            memcpy(p, &e, sizeof(e));
            p += sizeof(e) + ((n + 3u) & ~3u);
            req->Entries++;
        }
        else return usage();
    }
    if (!req->Threads || !req->Entries || (!req->RatePerSecond != !req->DurationSeconds)) return usage();
    ioctl(h, FLTD_IOCTL_STRESS, buf, (DWORD)(p - buf), &out, sizeof(out));
    printf("stress=started\n");
    fflush(stdout);
    if (!until)
    {
        if (!req->OpsPerThread && !req->RatePerSecond)
        {
            printf("stress=running (stop it with stress-end --stop)\n");
            return 0;
        }
        /* Wait without a waiting request: winedevice serves every request
         * of the driver's process on one thread, and a STRESS_END that
         * waited for the threads would hold back the driver's own
         * requests (the event service's reads) for the whole run. */
        while (stress_peek(h) > 0) Sleep(50);
        return stress_end(h, FLTD_STRESS_END_WAIT);
    }
    /* Keep this process (the requestor of the user-mode operations) alive
     * until the test says stop. */
    while (GetFileAttributesW(until) == INVALID_FILE_ATTRIBUTES && waited < max_seconds * 10)
    {
        Sleep(100);
        waited++;
    }
    return stress_end(h, FLTD_STRESS_END_STOP);
}

/* ---- rate: operations at a known offered rate ------------------------------
 * One token bucket for the whole run, kept as GCRA ("theoretical arrival
 * time") in one 64-bit word so that no thread ever takes a lock (a
 * contended critical section is a wineserver round trip under Wine). Times
 * are QueryPerformanceCounter ticks since the start, scaled by the rate
 * (tick * rate), so an interval is exactly `freq` scaled units and nothing
 * is rounded. */
#define RATE_MAX_ENTRIES 16
#define RATE_MAX_NAME 1024

typedef struct RATE_ENTRY {
    FLTD_OP_REQUEST req; /* followed by the name */
    UCHAR name[RATE_MAX_NAME];
} RATE_ENTRY;

static struct {
    LONGLONG freq, t0, rate, end_scaled, tau_scaled;
    volatile LONGLONG tat; /* next token's time, scaled */
    volatile LONG next;    /* operations taken so far (picks the entry) */
    RATE_ENTRY entries[RATE_MAX_ENTRIES];
    ULONG nentries;
    volatile LONG ops, callbacks, denied, not_callback, failed, late_5ms;
    volatile LONGLONG max_late, last_done;
    volatile LONGLONG max_callback_us;
} g_rate;

static LONGLONG qpc(void)
{
    LARGE_INTEGER t;
    QueryPerformanceCounter(&t);
    return t.QuadPart - g_rate.t0;
}

static void max_ll(volatile LONGLONG *p, LONGLONG v)
{
    LONGLONG cur = *p;
    while (v > cur)
    {
        LONGLONG seen = InterlockedCompareExchange64(p, v, cur);
        if (seen == cur) break;
        cur = seen;
    }
}

/* Takes the next token: its due time (ticks), or -1 when the run is over. */
static LONGLONG take_token(void)
{
    for (;;)
    {
        LONGLONG old = g_rate.tat, now = qpc() * g_rate.rate;
        /* A bucket holds at most `burst` tokens: time spent behind earns no more. */
        LONGLONG due = old > now - g_rate.tau_scaled ? old : now - g_rate.tau_scaled;
        if (due >= g_rate.end_scaled) return -1;
        if (InterlockedCompareExchange64(&g_rate.tat, due + g_rate.freq, old) == old) return due / g_rate.rate;
    }
}

static DWORD WINAPI rate_thread(void *unused)
{
    static const DWORD out_len = sizeof(FLTD_OP_RESULT);
    HANDLE h = CreateFileW(FLTD_USER_PATH, GENERIC_READ | GENERIC_WRITE, 0, NULL, OPEN_EXISTING, 0, NULL);
    LONGLONG due, ms_ticks = g_rate.freq / 1000;
    (void)unused;
    if (h == INVALID_HANDLE_VALUE)
    {
        InterlockedIncrement(&g_rate.failed);
        return 1;
    }
    while ((due = take_token()) >= 0)
    {
        const RATE_ENTRY *e = &g_rate.entries[(ULONG)InterlockedIncrement(&g_rate.next) % g_rate.nentries];
        FLTD_OP_RESULT res;
        DWORD got = 0;
        LONGLONG now;
        /* Sleep to within a millisecond of the token (Sleep's granularity
         * under Wine; an operation starts at most 1 ms early, never more
         * often than the bucket allows). */
        while ((now = qpc()) < due - ms_ticks) Sleep((DWORD)((due - now) / ms_ticks > 1 ? (due - now) / ms_ticks - 1 : 1));
        if (now - due > 5 * ms_ticks) InterlockedIncrement(&g_rate.late_5ms);
        max_ll(&g_rate.max_late, now - due);
        InterlockedIncrement(&g_rate.ops);
        if (!DeviceIoControl(h, FLTD_IOCTL_OP, (void *)&e->req, (DWORD)sizeof(e->req) + e->req.NameBytes, &res,
                             out_len, &got, NULL) ||
            got < out_len)
            InterlockedIncrement(&g_rate.failed);
        else if (res.Outcome != FLTD_OUTCOME_CALLBACK)
            InterlockedIncrement(&g_rate.not_callback);
        else
        {
            InterlockedIncrement(&g_rate.callbacks);
            if (res.IoStatus < 0) InterlockedIncrement(&g_rate.denied);
            max_ll(&g_rate.max_callback_us, res.CallbackMicros);
        }
        max_ll(&g_rate.last_done, qpc());
    }
    CloseHandle(h);
    return 0;
}

static int cmd_rate(int argc, wchar_t **argv)
{
    LARGE_INTEGER f, t0;
    HANDLE th[FLTD_MAX_THREADS];
    long threads = 4, burst = 0, duration = 0, rate = 0, k;
    int a;
    memset(&g_rate, 0, sizeof(g_rate));
    for (a = 0; a < argc; a++)
    {
        if (!wcscmp(argv[a], L"--rate") && a + 1 < argc)
        {
            wchar_t *end;
            rate = wcstol(argv[++a], &end, 10);
            if (*end && wcscmp(end, L"/s")) return usage();
        }
        else if (!wcscmp(argv[a], L"--duration") && a + 1 < argc) duration = wcstol(argv[++a], NULL, 10);
        else if (!wcscmp(argv[a], L"--threads") && a + 1 < argc) threads = wcstol(argv[++a], NULL, 10);
        else if (!wcscmp(argv[a], L"--burst") && a + 1 < argc) burst = wcstol(argv[++a], NULL, 10);
        else if (!wcscmp(argv[a], L"--entry") && a + 1 < argc && g_rate.nentries < RATE_MAX_ENTRIES)
        {
            RATE_ENTRY *e = &g_rate.entries[g_rate.nentries++];
            DWORD n;
            header(&e->req.Header, sizeof(e->req));
            e->req.Volume = FLTD_VOLUME_NPFS;
            e->req.RequestorMode = FLTD_USER_MODE;
            if (!parse_entry(argv[++a], &e->req.MajorFunction, &e->req.Flags, e->name, RATE_MAX_NAME, &n))
                return usage();
            e->req.NameBytes = n;
        }
        else return usage();
    }
    if (rate < 1 || rate > 100000 || duration < 1 || duration > 600 || threads < 1 || threads > FLTD_MAX_THREADS ||
        burst < 0 || !g_rate.nentries)
        return usage();
    if (!burst) burst = threads;
    QueryPerformanceFrequency(&f);
    g_rate.freq = f.QuadPart;
    g_rate.rate = rate;
    g_rate.end_scaled = g_rate.freq * duration * rate; /* even at 3e9 ticks/s: 1.8e17 < 2^63 */
    g_rate.tau_scaled = g_rate.freq * (burst - 1);
    QueryPerformanceCounter(&t0);
    g_rate.t0 = t0.QuadPart;
    printf("rate.offered_per_second=%ld\n", rate);
    printf("rate.duration_s=%ld\n", duration);
    printf("rate.threads=%ld\n", threads);
    printf("rate.burst=%ld\n", burst);
    fflush(stdout);
    for (k = 0; k < threads; k++)
    {
        th[k] = CreateThread(NULL, 0, rate_thread, NULL, 0, NULL);
        if (!th[k])
        {
            printf("error=cannot create thread %ld (%lu)\n", k, GetLastError());
            threads = k;
            break;
        }
    }
    for (k = 0; k < threads; k++)
    {
        WaitForSingleObject(th[k], INFINITE);
        CloseHandle(th[k]);
    }
    {
        LONGLONG elapsed_us = g_rate.last_done * 1000000 / g_rate.freq;
        printf("rate.ops=%ld\n", g_rate.ops);
        printf("rate.callbacks=%ld\n", g_rate.callbacks);
        printf("rate.denied=%ld\n", g_rate.denied);
        printf("rate.not_callback=%ld\n", g_rate.not_callback);
        printf("rate.failed=%ld\n", g_rate.failed);
        printf("rate.elapsed_us=%lld\n", elapsed_us);
        printf("rate.achieved_per_second=%lld\n", elapsed_us ? (LONGLONG)g_rate.ops * 1000000 / elapsed_us : 0);
        printf("rate.max_late_us=%lld\n", g_rate.max_late * 1000000 / g_rate.freq);
        printf("rate.late_over_5ms=%ld\n", g_rate.late_5ms);
        printf("rate.max_callback_us=%lld\n", g_rate.max_callback_us);
    }
    return g_rate.failed || threads < 1 ? 1 : 0;
}

int wmain(int argc, wchar_t **argv)
{
    HANDLE h;
    int r;
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc < 2) return usage();
    if (!wcscmp(argv[1], L"rate")) return cmd_rate(argc - 2, argv + 2);
    h = open_double();
    if (!wcscmp(argv[1], L"info")) r = cmd_info(h);
    else if (!wcscmp(argv[1], L"op")) r = cmd_op(h, argc - 2, argv + 2);
    else if (!wcscmp(argv[1], L"async-wait")) r = cmd_async_wait(h, argc - 2, argv + 2);
    else if (!wcscmp(argv[1], L"window")) r = cmd_window(h, argc - 2, argv + 2);
    else if (!wcscmp(argv[1], L"stress")) r = cmd_stress(h, argc - 2, argv + 2);
    else if (!wcscmp(argv[1], L"stress-end")) r = stress_end(h, argc > 2 && !wcscmp(argv[2], L"--stop") ? FLTD_STRESS_END_STOP : FLTD_STRESS_END_WAIT);
    else r = usage();
    CloseHandle(h);
    return r;
}
