/*
 * fltmgr.sys — a filter-manager DOUBLE for running PipeSensor's real
 * minifilter callbacks under Wine. TEST ONLY: never shipped.
 *
 * Wine 8's fltmgr.sys is a stub (FltRegisterFilter returns 0xDEADBEAF and
 * nothing ever calls a callback; FltGetRequestorProcess raises). This
 * replacement is bound to the driver's fltmgr.sys imports when the Wine DLL
 * override `fltmgr.sys=n` is set and the file sits beside the driver
 * (scripts/wine-callbacks.sh). It exports every Flt* routine the driver
 * imports, with the filter manager's semantics:
 *
 *  - FltRegisterFilter copies and checks the registration (size for the
 *    version, version, flags, the operation list up to its terminator,
 *    contexts), installs its own DriverUnload (as the real filter manager
 *    does) which calls FilterUnloadCallback, and returns a real handle.
 *  - FltStartFiltering calls InstanceSetupCallback for a named-pipe volume
 *    (FLT_FSTYPE_NPFS; only when FLTFL_REGISTRATION_SUPPORT_NPFS_MSFS is
 *    set, as on Windows) and a disk volume (FLT_FSTYPE_NTFS), and attaches
 *    where it returned success.
 *  - FltUnregisterFilter stops new callbacks, releases held operations,
 *    waits for callbacks in flight, stops and joins every thread of the
 *    double, deletes its control device, and logs what happened: nothing of
 *    the double runs after it returns (the image is unmapped with the
 *    driver).
 *  - FltGetRequestorProcess / FltGetRequestorProcessId return the process
 *    of the thread that requested the operation (CallbackData->Thread, or
 *    the current process when it is NULL), without taking a reference: the
 *    double keeps that thread and its process referenced for as long as the
 *    operation is in progress. (Wine 8 stubs IoThreadToProcess and
 *    PsGetThreadProcess, so the process is found with
 *    PsGetThreadProcessId + PsLookupProcessByProcessId when the operation
 *    is set up.)
 *
 * Operations are driven through the double's own control device
 * (\\.\PipeSensorFltDouble, protocol in fltdouble.h, client fltctl.c).
 * Each operation gets a fresh FILE_OBJECT, FLT_IO_PARAMETER_BLOCK,
 * FLT_CALLBACK_DATA and FLT_RELATED_OBJECTS (structures from Wine's DDK
 * headers; the pieces Wine lacks are in fltdouble.h and go through the
 * layout probe), poisoned when freed. The callback's return is checked as
 * the filter manager and Driver Verifier would (FLTD_V_* in fltdouble.h).
 *
 * Threads: winedevice.exe serves client requests on one thread, so every
 * parallel operation runs on the double's own system threads
 * (PsCreateSystemThread), which are always joined before the double lets
 * the driver go.
 *
 * Logging: DbgPrint lines starting "FltDouble: " (WINEDEBUG=+debugstr).
 */
#ifndef FLTD_KERNEL
#define FLTD_KERNEL
#endif
#include "fltdouble.h"

/* Wine's headers declare these for Wine's own build; the x64 exports. */
void WINAPI IofCompleteRequest(IRP *irp, CCHAR boost);



#define FLTD_TAG 0x6c624446u /* "FDbl" */
#define NON_PAGED_POOL_NX 512

/* An initial IoStatus the callback must leave alone unless it completes the
 * operation. */
#define SENTINEL_STATUS ((NTSTATUS)0x1D0DF00D)
#define SENTINEL_INFO ((ULONG_PTR)0xA5A5A5A5A5A5A5A5ull)

/* ------------------------------------------------------------------------
 * Small utilities: pool (counted), time, logging, interlocked
 * --------------------------------------------------------------------- */
static volatile LONG64 g_pool_live;

static void *pool_alloc(SIZE_T size)
{
    void *p = ExAllocatePoolWithTag(NON_PAGED_POOL_NX, size ? size : 1, FLTD_TAG);
    if (p)
    {
        memset(p, 0, size ? size : 1);
        __atomic_add_fetch(&g_pool_live, 1, __ATOMIC_RELAXED);
    }
    return p;
}

static void pool_free(void *p, SIZE_T poison_len)
{
    if (!p) return;
    if (poison_len) memset(p, 0xCC, poison_len); /* a pointer kept by the filter reads garbage */
    ExFreePoolWithTag(p, FLTD_TAG);
    __atomic_sub_fetch(&g_pool_live, 1, __ATOMIC_RELAXED);
}

typedef void (WINAPI *query_time_fn)(LARGE_INTEGER *);
static query_time_fn g_query_time;

static void resolve_time(void)
{
    UNICODE_STRING n;
    if (g_query_time) return;
    RtlInitUnicodeString(&n, L"KeQuerySystemTimePrecise");
    g_query_time = (query_time_fn)MmGetSystemRoutineAddress(&n);
    if (!g_query_time)
    {
        RtlInitUnicodeString(&n, L"KeQuerySystemTime");
        g_query_time = (query_time_fn)MmGetSystemRoutineAddress(&n);
    }
}

/* Microseconds on the system clock (0 when no routine was found). */
static ULONG64 now_us(void)
{
    LARGE_INTEGER t;
    if (!g_query_time) return 0;
    g_query_time(&t);
    return (ULONG64)t.QuadPart / 10;
}

#define LOG(...) DbgPrint("FltDouble: " __VA_ARGS__)

static void sleep_ms(LONG ms)
{
    LARGE_INTEGER t;
    t.QuadPart = -10000LL * ms;
    KeDelayExecutionThread(KernelMode, FALSE, &t);
}

static void max_u64(volatile ULONG64 *p, ULONG64 v)
{
    ULONG64 cur = __atomic_load_n(p, __ATOMIC_RELAXED);
    while (v > cur && !__atomic_compare_exchange_n(p, &cur, v, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
        ;
}

/* A rundown counter: bit 0 = closed, the rest = holders x 2. */
typedef struct RUNDOWN { volatile LONG64 state; } RUNDOWN;

static BOOLEAN rundown_acquire(RUNDOWN *r)
{
    LONG64 s = __atomic_load_n(&r->state, __ATOMIC_RELAXED);
    for (;;)
    {
        if (s & 1) return FALSE;
        if (__atomic_compare_exchange_n(&r->state, &s, s + 2, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
            return TRUE;
    }
}
static void rundown_release(RUNDOWN *r) { __atomic_sub_fetch(&r->state, 2, __ATOMIC_RELEASE); }
static LONG64 rundown_holders(RUNDOWN *r) { return __atomic_load_n(&r->state, __ATOMIC_ACQUIRE) >> 1; }
static void rundown_close(RUNDOWN *r) { __atomic_or_fetch(&r->state, 1, __ATOMIC_ACQ_REL); }
static void rundown_wait(RUNDOWN *r)
{
    while (rundown_holders(r) != 0) sleep_ms(1);
}
static void rundown_reset(RUNDOWN *r) { __atomic_store_n(&r->state, 0, __ATOMIC_RELEASE); }

/* ------------------------------------------------------------------------
 * System threads (always joined)
 * --------------------------------------------------------------------- */
typedef struct THREAD { void *obj; } THREAD;

static NTSTATUS thread_start(THREAD *t, PKSTART_ROUTINE fn, void *ctx)
{
    HANDLE h;
    OBJECT_ATTRIBUTES oa;
    NTSTATUS s;
    InitializeObjectAttributes(&oa, NULL, OBJ_KERNEL_HANDLE, NULL, NULL);
    t->obj = NULL;
    s = PsCreateSystemThread(&h, THREAD_ALL_ACCESS, &oa, NULL, NULL, fn, ctx);
    if (s < 0) return s;
    s = ObReferenceObjectByHandle(h, SYNCHRONIZE, NULL, KernelMode, &t->obj, NULL);
    ZwClose(h);
    if (s < 0)
    {
        /* Cannot join it: never happens under Wine; say so loudly. */
        LOG("ERROR: thread started but not referenced (0x%lx)\n", (ULONG)s);
        t->obj = NULL;
    }
    return s;
}

static void thread_join(THREAD *t)
{
    if (!t->obj) return;
    KeWaitForSingleObject(t->obj, Executive, KernelMode, FALSE, NULL);
    ObDereferenceObject(t->obj);
    t->obj = NULL;
}

/* ------------------------------------------------------------------------
 * The filter, its volumes and instances
 * --------------------------------------------------------------------- */
#define FILTER_MAGIC 0x544c4946u   /* "FILT" */
#define VOLUME_MAGIC 0x4c4f5646u   /* "FVOL" */
#define INSTANCE_MAGIC 0x534e4946u /* "FINS" */

enum { ST_NONE, ST_REGISTERED, ST_FILTERING, ST_UNREGISTERING, ST_UNREGISTERED };

typedef struct FLTD_VOLUME_OBJ { ULONG magic; ULONG index; } FLTD_VOLUME_OBJ;
typedef struct FLTD_INSTANCE_OBJ { ULONG magic; ULONG index; } FLTD_INSTANCE_OBJ;

typedef struct VOLUME {
    const char *name;
    DEVICE_TYPE device_type;
    FLT_FILESYSTEM_TYPE fs_type;
    FLTD_VOLUME_OBJ volume;
    FLTD_INSTANCE_OBJ instance;
    FILE_OBJECT *root; /* the volume's root directory (FileName empty) */
    LONG setup_status; /* -1: InstanceSetup not called */
    BOOLEAN attached;
} VOLUME;

struct _FLT_FILTER {
    ULONG magic;
    DRIVER_OBJECT *driver;
    FLT_REGISTRATION reg; /* the copy (Size bytes of it) */
    FLT_OPERATION_REGISTRATION ops[FLTD_MAX_OPERATIONS];
    ULONG nops;
    ULONG problems;
};

static struct _FLT_FILTER g_filter;
static volatile LONG g_state;
static VOLUME g_volumes[FLTD_VOLUMES];
static RUNDOWN g_callbacks;  /* pre-operation callbacks in flight */
static RUNDOWN g_dispatch;   /* control-device requests in progress */
static volatile LONG64 g_callbacks_total;
static volatile LONG64 g_requestor_calls;
static volatile LONG64 g_window; /* (generation << 1) | open */
static DRIVER_OBJECT *g_ctl_driver;
static DEVICE_OBJECT *g_ctl_device;
static BOOLEAN g_ctl_link;

/* Holds: ops flagged HOLD block in FltGetRequestorProcess until released. */
static KEVENT g_release; /* notification event */
static volatile LONG g_held;

/* ------------------------------------------------------------------------
 * One operation
 * --------------------------------------------------------------------- */
#define OP_MAGIC 0x4f445046u /* "FPDO" */

/* Everything one operation hands to the filter, in one pool block;
 * CallbackData first, so the block is found from the pointer the filter
 * passes back to FltGetRequestorProcess. */
typedef struct OPBLOCK {
    FLT_CALLBACK_DATA data;
    ULONG magic;
    volatile LONG hold; /* block once in FltGetRequestorProcess */
    PEPROCESS process;  /* the requestor's process (referenced by the op's issuer) */
    FLT_IO_PARAMETER_BLOCK iopb;
    FLT_RELATED_OBJECTS objs;
    IO_SECURITY_CONTEXT security;
    __attribute__((aligned(16))) UCHAR file[FLTD_FILE_OBJECT_SIZE];
    WCHAR name[1]; /* NameBytes (+1) bytes */
} OPBLOCK;

typedef struct OPSPEC {
    UCHAR major, volume, mode, flags;
    ULONG name_bytes;
    const UCHAR *name;
    PETHREAD thread;   /* the requesting thread (referenced by the caller for async ops) */
    PEPROCESS process; /* its process, referenced by the caller */
} OPSPEC;

static const FLT_OPERATION_REGISTRATION *find_op(UCHAR major)
{
    ULONG i;
    for (i = 0; i < g_filter.nops; i++)
        if (g_filter.ops[i].MajorFunction == major) return &g_filter.ops[i];
    return NULL;
}

/* The requestor's process for callback data the double built (kept
 * referenced by the operation), else the current process. */
static PEPROCESS requestor_process(PFLT_CALLBACK_DATA data)
{
    OPBLOCK *op = (OPBLOCK *)data;
    if (data && op->magic == OP_MAGIC && data->Thread) return op->process;
    return IoGetCurrentProcess();
}

/* The process of `t`, referenced (NULL if it cannot be found). */
static PEPROCESS lookup_process(PETHREAD t)
{
    PEPROCESS p = NULL;
    if (!t || PsLookupProcessByProcessId(PsGetThreadProcessId(t), &p) < 0) return NULL;
    return p;
}

static BOOLEAN valid_preop(LONG st, const FLT_OPERATION_REGISTRATION *r)
{
    switch (st)
    {
    case FLT_PREOP_SUCCESS_NO_CALLBACK:
    case FLT_PREOP_COMPLETE:
        return TRUE;
    case FLT_PREOP_SUCCESS_WITH_CALLBACK:
    case FLT_PREOP_SYNCHRONIZE:
        return r->PostOperation != NULL;
    default: /* PENDING needs FltCompletePendedPreOperation (not exported);
                DISALLOW_FASTIO / DISALLOW_FSFILTER_IO are not for IRP ops */
        return FALSE;
    }
}

/* Runs one operation through the filter and fills `res`; updates `tally`
 * when given. */
static void run_op(const OPSPEC *spec, FLTD_OP_RESULT *res, FLTD_TALLY *tally)
{
    const FLT_OPERATION_REGISTRATION *reg;
    VOLUME *vol = &g_volumes[spec->volume < FLTD_VOLUMES ? spec->volume : 0];
    OPBLOCK *op;
    FILE_OBJECT *file;
    SIZE_T block;
    LONG64 w0, w1;
    void *ctx = NULL;
    ULONG64 t0, t1, us;
    LONG st;
    ULONG v = 0;

    memset(res, 0, sizeof(*res));
    res->Header.Magic = FLTD_MAGIC;
    res->Header.Version = FLTD_VERSION;
    res->Header.Size = sizeof(*res);
    res->PreopStatus = -1;
    res->IoStatus = STATUS_SUCCESS; /* passed down to the file system */
    if (tally)
    {
        __atomic_add_fetch(&tally->Started, 1, __ATOMIC_RELAXED);
        if (spec->mode == FLTD_KERNEL_MODE) __atomic_add_fetch(&tally->KernelOps, 1, __ATOMIC_RELAXED);
    }

    reg = find_op(spec->major);
    if (!vol->attached || !reg || !reg->PreOperation)
    {
        res->Outcome = FLTD_OUTCOME_NOT_ATTACHED;
        if (tally) __atomic_add_fetch(&tally->NotAttached, 1, __ATOMIC_RELAXED);
        return;
    }
    if (g_state != ST_FILTERING || !rundown_acquire(&g_callbacks))
    {
        res->Outcome = FLTD_OUTCOME_UNFILTERED;
        if (tally) __atomic_add_fetch(&tally->Unfiltered, 1, __ATOMIC_RELAXED);
        return;
    }
    block = offsetof(OPBLOCK, name) + spec->name_bytes + 2;
    op = pool_alloc(block);
    if (!op)
    {
        rundown_release(&g_callbacks);
        res->Outcome = FLTD_OUTCOME_FAILED;
        if (tally) __atomic_add_fetch(&tally->Failed, 1, __ATOMIC_RELAXED);
        return;
    }
    op->magic = OP_MAGIC;
    op->hold = (spec->flags & FLTD_OP_HOLD) ? 1 : 0;
    op->process = spec->process;
    memcpy(op->name, spec->name, spec->name_bytes);

    file = (FILE_OBJECT *)op->file;
    file->Type = 5; /* IO_TYPE_FILE */
    file->Size = FLTD_FILE_OBJECT_SIZE;
    file->RelatedFileObject = (spec->flags & FLTD_OP_RELATIVE) ? vol->root : NULL;
    file->FileName.Buffer = op->name;
    file->FileName.Length = (USHORT)spec->name_bytes;
    file->FileName.MaximumLength = (USHORT)spec->name_bytes;

    op->security.DesiredAccess = GENERIC_READ | GENERIC_WRITE | SYNCHRONIZE;
    op->iopb.IrpFlags = 0x84; /* IRP_CREATE_OPERATION | IRP_SYNCHRONOUS_API */
    op->iopb.MajorFunction = spec->major;
    op->iopb.TargetFileObject = file;
    op->iopb.TargetInstance = (PFLT_INSTANCE)&vol->instance;
    op->iopb.Parameters.Create.SecurityContext = &op->security;
    op->iopb.Parameters.Create.Options =
        ((spec->major == IRP_MJ_CREATE_NAMED_PIPE ? FILE_CREATE : FILE_OPEN) << 24) | FILE_SYNCHRONOUS_IO_NONALERT;
    op->iopb.Parameters.Create.ShareAccess = FILE_SHARE_READ | FILE_SHARE_WRITE;

    op->data.Flags = FLTFL_CALLBACK_DATA_IRP_OPERATION;
    *(PETHREAD *)&op->data.Thread = spec->thread;
    *(PFLT_IO_PARAMETER_BLOCK *)&op->data.Iopb = &op->iopb;
    op->data.IoStatus.Status = SENTINEL_STATUS;
    op->data.IoStatus.Information = SENTINEL_INFO;
    op->data.RequestorMode = spec->mode == FLTD_KERNEL_MODE ? KernelMode : UserMode;

    op->objs.Size = sizeof(FLT_RELATED_OBJECTS);
    op->objs.Filter = &g_filter;
    op->objs.Volume = (PFLT_VOLUME)&vol->volume;
    op->objs.Instance = (PFLT_INSTANCE)&vol->instance;
    op->objs.FileObject = file;

    res->RequestorPid = (ULONG)(ULONG_PTR)PsGetProcessId(requestor_process(&op->data));
    __atomic_add_fetch(&g_callbacks_total, 1, __ATOMIC_RELAXED);

    w0 = __atomic_load_n(&g_window, __ATOMIC_ACQUIRE);
    t0 = now_us();
    st = reg->PreOperation(&op->data, (PCFLT_RELATED_OBJECTS)&op->objs, &ctx);
    t1 = now_us();
    w1 = __atomic_load_n(&g_window, __ATOMIC_ACQUIRE);

    /* The contract (filter manager, Driver Verifier). */
    if (!valid_preop(st, reg)) v |= FLTD_V_BAD_RETURN;
    if (st == FLT_PREOP_COMPLETE)
    {
        if (!NT_ERROR(op->data.IoStatus.Status) || op->data.IoStatus.Status == SENTINEL_STATUS)
            v |= FLTD_V_COMPLETE_NO_ERROR;
    }
    else if (op->data.IoStatus.Status != SENTINEL_STATUS || op->data.IoStatus.Information != SENTINEL_INFO)
        v |= FLTD_V_IOSTATUS_CHANGED;
    if (ctx && st != FLT_PREOP_SUCCESS_WITH_CALLBACK && st != FLT_PREOP_SYNCHRONIZE)
        v |= FLTD_V_COMPLETION_CONTEXT;
    if (ctx && !reg->PostOperation) v |= FLTD_V_COMPLETION_CONTEXT;
    us = t1 > t0 ? t1 - t0 : 0;
    if (us > (ULONG64)FLTD_CALLBACK_BOUND_MS * 1000) v |= FLTD_V_TOO_SLOW;
    if (op->data.Iopb != &op->iopb || op->data.Thread != spec->thread ||
        op->iopb.MajorFunction != spec->major || op->iopb.TargetFileObject != file ||
        op->data.RequestorMode != (spec->mode == FLTD_KERNEL_MODE ? KernelMode : UserMode) ||
        file->FileName.Buffer != op->name || file->FileName.Length != (USHORT)spec->name_bytes ||
        file->RelatedFileObject != ((spec->flags & FLTD_OP_RELATIVE) ? vol->root : NULL) ||
        memcmp(op->name, spec->name, spec->name_bytes) != 0)
        v |= FLTD_V_PARAMETERS_CHANGED;

    res->Outcome = FLTD_OUTCOME_CALLBACK;
    res->PreopStatus = st;
    res->Violations = v;
    res->CallbackMicros = us > 0xFFFFFFFFull ? 0xFFFFFFFFu : (ULONG)us;
    if (st == FLT_PREOP_COMPLETE)
    {
        res->IoStatus = op->data.IoStatus.Status;
        res->Information = op->data.IoStatus.Information;
    }

    if (tally)
    {
        BOOLEAN denied = st == FLT_PREOP_COMPLETE && NT_ERROR(op->data.IoStatus.Status);
        __atomic_add_fetch(&tally->Callbacks, 1, __ATOMIC_RELAXED);
        __atomic_add_fetch(denied ? &tally->Denied : &tally->Allowed, 1, __ATOMIC_RELAXED);
        if (v) __atomic_add_fetch(&tally->Violations, 1, __ATOMIC_RELAXED);
        max_u64(&tally->MaxCallbackMicros, us);
        if ((spec->flags & FLTD_OP_BLOCK_CLASS) && (w0 & 1) && w0 == w1)
        {
            __atomic_add_fetch(&tally->BlockInWindow, 1, __ATOMIC_RELAXED);
            if (!denied) __atomic_add_fetch(&tally->BlockLeaks, 1, __ATOMIC_RELAXED);
        }
    }
    if (v)
        LOG("VIOLATION 0x%lx: major %u, preop %ld, IoStatus 0x%lx, %lu name bytes\n", v, spec->major, st,
            (ULONG)op->data.IoStatus.Status, spec->name_bytes);
    pool_free(op, block);
    rundown_release(&g_callbacks);
}

/* Blocks an operation flagged HOLD until ASYNC_WAIT(release) or
 * unregistration. Called from the filter's own call into us, with
 * whatever the filter holds at that point (its working memory: the point
 * of holding). */
static void maybe_hold(PFLT_CALLBACK_DATA data)
{
    OPBLOCK *op = (OPBLOCK *)data;
    if (!data || op->magic != OP_MAGIC || !__atomic_exchange_n(&op->hold, 0, __ATOMIC_ACQ_REL)) return;
    __atomic_add_fetch(&g_held, 1, __ATOMIC_ACQ_REL);
    KeWaitForSingleObject(&g_release, Executive, KernelMode, FALSE, NULL);
    __atomic_sub_fetch(&g_held, 1, __ATOMIC_ACQ_REL);
}

/* ------------------------------------------------------------------------
 * Async operations (ASYNC / HOLD): one system thread each
 * --------------------------------------------------------------------- */
typedef struct ASYNC_OP {
    OPSPEC spec;
    UCHAR *name; /* pool copy */
    PETHREAD client; /* referenced */
    PEPROCESS client_process; /* referenced */
    THREAD thread;
    FLTD_OP_RESULT result;
} ASYNC_OP;

static ASYNC_OP *g_async[FLTD_MAX_ASYNC];
static ULONG g_async_count;

/* Runs a queued op on its own system thread; a kernel-mode op's
 * requestor is that thread (its process: the host, like System). */
static void WINAPI async_main(void *ctx)
{
    ASYNC_OP *a = ctx;
    PEPROCESS own = NULL;
    if (a->spec.mode == FLTD_KERNEL_MODE)
    {
        a->spec.thread = PsGetCurrentThread();
        a->spec.process = own = lookup_process(a->spec.thread);
    }
    run_op(&a->spec, &a->result, NULL);
    if (own) ObDereferenceObject(own);
    PsTerminateSystemThread(STATUS_SUCCESS);
}

static void ref_requestor(PETHREAD t, PETHREAD *out_t, PEPROCESS *out_p)
{
    *out_t = t;
    if (t) ObfReferenceObject(t);
    *out_p = lookup_process(t);
}

static void deref_requestor(PETHREAD t, PEPROCESS p)
{
    if (p) ObDereferenceObject(p);
    if (t) ObDereferenceObject(t);
}

/* Joins every async op; copies up to FLTD_MAX_ASYNC results into `out`. */
static ULONG async_collect(FLTD_OP_RESULT *out)
{
    ULONG i, n = g_async_count;
    for (i = 0; i < n; i++)
    {
        ASYNC_OP *a = g_async[i];
        thread_join(&a->thread);
        if (out) out[i] = a->result;
        deref_requestor(a->client, a->client_process);
        pool_free(a->name, a->spec.name_bytes);
        pool_free(a, sizeof(*a));
        g_async[i] = NULL;
    }
    g_async_count = 0;
    return n;
}

/* ------------------------------------------------------------------------
 * Stress: N system threads issuing operations until told to stop
 * --------------------------------------------------------------------- */
typedef struct STRESS_ENTRY_COPY { UCHAR major, flags; USHORT bytes; UCHAR *name; } STRESS_ENTRY_COPY;

typedef struct STRESS_THREAD {
    ULONG index;
    THREAD thread;
    ULONG64 first_us, last_us;
} STRESS_THREAD;

typedef struct STRESS {
    ULONG threads, ops_per_thread, flags, nentries;
    /* The token bucket of a paced run (rate 0: unpaced), kept as GCRA (the
     * next token's time) in one word the threads update with a CAS. Times
     * are 100 ns units since `start`, scaled by the rate, so one token is
     * exactly 10^7 scaled units and nothing is rounded. */
    ULONG rate;
    LONG64 start, end_scaled, tau_scaled;
    volatile LONG64 tat;
    STRESS_ENTRY_COPY entries[FLTD_MAX_ENTRIES];
    STRESS_THREAD t[FLTD_MAX_THREADS];
    PETHREAD client;
    PEPROCESS client_process;
    volatile LONG stop;
    volatile LONG running;
    FLTD_TALLY tally;
} STRESS;

static STRESS *g_stress;

/* 100 ns units on the system clock (Wine 8 has no KeQueryPerformanceCounter). */
static LONG64 now_100ns(void)
{
    LARGE_INTEGER t;
    if (!g_query_time) return 0;
    g_query_time(&t);
    return t.QuadPart;
}

#define TOKEN_SCALED 10000000LL /* one token: a second's 100 ns units / rate, scaled by the rate */

/* Paced run: waits for the next token. FALSE when the run's time is over
 * or it was stopped. An operation starts at most 1 ms before its token
 * (KeDelayExecutionThread's granularity), never more often than the bucket
 * allows. */
static BOOLEAN stress_token(STRESS *s)
{
    LONG64 due, now;
    for (;;)
    {
        LONG64 old = __atomic_load_n(&s->tat, __ATOMIC_ACQUIRE);
        now = (now_100ns() - s->start) * (LONG64)s->rate;
        /* A bucket holds at most Burst tokens: time spent behind earns no more. */
        due = old > now - s->tau_scaled ? old : now - s->tau_scaled;
        if (due >= s->end_scaled) return FALSE;
        if (__atomic_compare_exchange_n(&s->tat, &old, due + TOKEN_SCALED, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
            break;
    }
    due /= (LONG64)s->rate;
    while ((now = now_100ns() - s->start) < due - 10000)
    {
        LONG64 ms = (due - now) / 10000 - 1;
        if (__atomic_load_n(&s->stop, __ATOMIC_ACQUIRE)) return FALSE;
        sleep_ms(ms > 1 ? (LONG)(ms < 1000 ? ms : 1000) : 1);
    }
    return TRUE;
}

static void WINAPI stress_main(void *ctx)
{
    STRESS_THREAD *me = ctx;
    STRESS *s = g_stress;
    ULONG i;
    FLTD_OP_RESULT res;
    PETHREAD self = PsGetCurrentThread();
    PEPROCESS own = lookup_process(self);
    me->first_us = now_us();
    for (i = 0; s->ops_per_thread == 0 || i < s->ops_per_thread; i++)
    {
        const STRESS_ENTRY_COPY *e = &s->entries[(i + me->index) % s->nentries];
        OPSPEC spec;
        if (__atomic_load_n(&s->stop, __ATOMIC_ACQUIRE)) break;
        if (s->rate && !stress_token(s)) break;
        spec.major = e->major;
        spec.volume = FLTD_VOLUME_NPFS;
        spec.flags = e->flags & (FLTD_OP_RELATIVE | FLTD_OP_BLOCK_CLASS);
        spec.name_bytes = e->bytes;
        spec.name = e->name;
        if ((s->flags & FLTD_STRESS_KERNEL_EVERY_4TH) && (i % 4) == 3)
        {
            spec.mode = FLTD_KERNEL_MODE;
            spec.thread = self;
            spec.process = own;
        }
        else
        {
            spec.mode = FLTD_USER_MODE;
            spec.thread = s->client;
            spec.process = s->client_process;
        }
        run_op(&spec, &res, &s->tally);
    }
    me->last_us = now_us();
    if (own) ObDereferenceObject(own);
    __atomic_sub_fetch(&s->running, 1, __ATOMIC_ACQ_REL);
    PsTerminateSystemThread(STATUS_SUCCESS);
}

static void tally_elapsed(STRESS *s)
{
    ULONG i;
    ULONG64 first = 0, last = 0;
    for (i = 0; i < s->threads; i++)
    {
        if (s->t[i].first_us && (!first || s->t[i].first_us < first)) first = s->t[i].first_us;
        if (s->t[i].last_us > last) last = s->t[i].last_us;
    }
    s->tally.ElapsedMicros = last > first ? last - first : 0;
}

static void log_tally(const char *what, const FLTD_TALLY *t)
{
    LOG("%s: started %I64u callbacks %I64u not_attached %I64u unfiltered %I64u failed %I64u "
        "denied %I64u allowed %I64u kernel_mode %I64u violations %I64u block_in_window %I64u "
        "block_leaks %I64u max_callback_us %I64u elapsed_us %I64u\n",
        what, t->Started, t->Callbacks, t->NotAttached, t->Unfiltered, t->Failed, t->Denied, t->Allowed,
        t->KernelOps, t->Violations, t->BlockInWindow, t->BlockLeaks, t->MaxCallbackMicros, t->ElapsedMicros);
}

/* Stops (or waits for) the stress threads, joins them and frees the run;
 * fills `out` when given. */
static void stress_end(BOOLEAN stop, FLTD_STRESS_REPORT *out, const char *why)
{
    STRESS *s = g_stress;
    ULONG i;
    if (!s) return;
    if (stop) __atomic_store_n(&s->stop, 1, __ATOMIC_RELEASE);
    for (i = 0; i < s->threads; i++) thread_join(&s->t[i].thread);
    tally_elapsed(s);
    log_tally(why, &s->tally);
    if (out)
    {
        out->Threads = s->threads;
        out->Running = (ULONG)s->running;
        out->Tally = s->tally;
    }
    for (i = 0; i < s->nentries; i++) pool_free(s->entries[i].name, s->entries[i].bytes);
    deref_requestor(s->client, s->client_process);
    g_stress = NULL;
    pool_free(s, sizeof(*s));
}

/* ------------------------------------------------------------------------
 * Control device
 * --------------------------------------------------------------------- */
static void fill_header(FLTD_HEADER *h, USHORT size)
{
    h->Magic = FLTD_MAGIC;
    h->Version = FLTD_VERSION;
    h->Size = size;
}

static BOOLEAN check_header(const void *buf, ULONG len, USHORT size)
{
    const FLTD_HEADER *h = buf;
    return buf && len >= size && h->Magic == FLTD_MAGIC && h->Version == FLTD_VERSION && h->Size == size;
}

static NTSTATUS ioctl_op(void *buf, ULONG in_len, ULONG out_len, ULONG_PTR *info)
{
    FLTD_OP_REQUEST req;
    const UCHAR *name;
    FLTD_OP_RESULT res;
    if (!check_header(buf, in_len, sizeof(FLTD_OP_REQUEST)) || out_len < sizeof(FLTD_OP_RESULT))
        return STATUS_INVALID_PARAMETER;
    memcpy(&req, buf, sizeof(req));
    if (req.NameBytes > FLTD_MAX_NAME_BYTES || in_len != sizeof(req) + req.NameBytes ||
        req.Volume >= FLTD_VOLUMES || req.RequestorMode > FLTD_USER_MODE ||
        (req.MajorFunction != IRP_MJ_CREATE && req.MajorFunction != IRP_MJ_CREATE_NAMED_PIPE))
        return STATUS_INVALID_PARAMETER;
    name = (const UCHAR *)buf + sizeof(req);
    if (req.Flags & FLTD_OP_HOLD) req.Flags |= FLTD_OP_ASYNC;

    if ((req.Flags & FLTD_OP_ASYNC) || req.RequestorMode == FLTD_KERNEL_MODE)
    {
        ASYNC_OP *a;
        NTSTATUS s;
        if ((req.Flags & FLTD_OP_ASYNC) && g_async_count >= FLTD_MAX_ASYNC) return STATUS_INSUFFICIENT_RESOURCES;
        a = pool_alloc(sizeof(*a));
        if (!a) return STATUS_INSUFFICIENT_RESOURCES;
        a->name = pool_alloc(req.NameBytes);
        if (!a->name)
        {
            pool_free(a, sizeof(*a));
            return STATUS_INSUFFICIENT_RESOURCES;
        }
        memcpy(a->name, name, req.NameBytes);
        a->spec.major = req.MajorFunction;
        a->spec.volume = req.Volume;
        a->spec.mode = req.RequestorMode;
        a->spec.flags = req.Flags;
        a->spec.name_bytes = req.NameBytes;
        a->spec.name = a->name;
        if (req.RequestorMode == FLTD_USER_MODE)
        {
            ref_requestor(PsGetCurrentThread(), &a->client, &a->client_process);
            a->spec.thread = a->client; /* kernel mode: the op's own thread sets it */
            a->spec.process = a->client_process;
        }
        s = thread_start(&a->thread, async_main, a);
        if (s < 0)
        {
            deref_requestor(a->client, a->client_process);
            pool_free(a->name, req.NameBytes);
            pool_free(a, sizeof(*a));
            return s;
        }
        if (req.Flags & FLTD_OP_ASYNC)
        {
            g_async[g_async_count++] = a;
            memset(&res, 0, sizeof(res));
            fill_header(&res.Header, sizeof(res));
            res.Outcome = FLTD_OUTCOME_QUEUED;
            res.PreopStatus = -1;
        }
        else
        {
            thread_join(&a->thread);
            res = a->result;
            pool_free(a->name, req.NameBytes);
            pool_free(a, sizeof(*a));
        }
    }
    else
    {
        OPSPEC spec;
        spec.major = req.MajorFunction;
        spec.volume = req.Volume;
        spec.mode = req.RequestorMode;
        spec.flags = req.Flags;
        spec.name_bytes = req.NameBytes;
        spec.name = name;
        spec.thread = PsGetCurrentThread(); /* Wine: the client thread while it serves the request */
        spec.process = lookup_process(spec.thread);
        run_op(&spec, &res, NULL);
        if (spec.process) ObDereferenceObject(spec.process);
    }
    memcpy(buf, &res, sizeof(res));
    *info = sizeof(res);
    return STATUS_SUCCESS;
}

static NTSTATUS ioctl_stress(void *buf, ULONG in_len, ULONG out_len, ULONG_PTR *info)
{
    FLTD_STRESS_REQUEST req;
    const UCHAR *p, *end;
    STRESS *s;
    ULONG i;
    if (!check_header(buf, in_len, sizeof(req)) || out_len < sizeof(FLTD_HEADER)) return STATUS_INVALID_PARAMETER;
    memcpy(&req, buf, sizeof(req));
    if (g_stress) return STATUS_DEVICE_BUSY;
    if (req.Threads == 0 || req.Threads > FLTD_MAX_THREADS || req.Entries == 0 || req.Entries > FLTD_MAX_ENTRIES ||
        req.RatePerSecond > FLTD_MAX_RATE || req.Reserved ||
        (req.RatePerSecond &&
         (req.DurationSeconds == 0 || req.DurationSeconds > FLTD_MAX_RATE_SECONDS || req.Burst > FLTD_MAX_RATE)) ||
        (!req.RatePerSecond && (req.DurationSeconds || req.Burst)))
        return STATUS_INVALID_PARAMETER;
    if (req.RatePerSecond && !g_query_time) return STATUS_NOT_SUPPORTED; /* no clock to pace with */
    s = pool_alloc(sizeof(*s));
    if (!s) return STATUS_INSUFFICIENT_RESOURCES;
    s->threads = req.Threads;
    s->ops_per_thread = req.OpsPerThread;
    s->flags = req.Flags;
    s->rate = req.RatePerSecond;
    if (s->rate)
    {
        /* At most 600 s * 10^7 * 10^5 = 6e14 scaled units: no overflow. */
        s->end_scaled = (LONG64)req.DurationSeconds * TOKEN_SCALED * s->rate;
        s->tau_scaled = ((LONG64)(req.Burst ? req.Burst : req.Threads) - 1) * TOKEN_SCALED;
        s->start = now_100ns();
    }
    p = (const UCHAR *)buf + sizeof(req);
    end = (const UCHAR *)buf + in_len;
    for (i = 0; i < req.Entries; i++)
    {
        FLTD_STRESS_ENTRY e;
        ULONG padded;
        if ((SIZE_T)(end - p) < sizeof(e)) break;
        memcpy(&e, p, sizeof(e));
        p += sizeof(e);
        padded = (e.NameBytes + 3u) & ~3u;
        if ((SIZE_T)(end - p) < padded ||
            (e.MajorFunction != IRP_MJ_CREATE && e.MajorFunction != IRP_MJ_CREATE_NAMED_PIPE))
            break;
        s->entries[i].major = e.MajorFunction;
        s->entries[i].flags = e.Flags;
        s->entries[i].bytes = e.NameBytes;
        s->entries[i].name = pool_alloc(e.NameBytes);
        if (!s->entries[i].name) break;
        memcpy(s->entries[i].name, p, e.NameBytes);
        p += padded;
        s->nentries = i + 1;
    }
    if (s->nentries != req.Entries || p != end)
    {
        for (i = 0; i < s->nentries; i++) pool_free(s->entries[i].name, s->entries[i].bytes);
        pool_free(s, sizeof(*s));
        return STATUS_INVALID_PARAMETER;
    }
    ref_requestor(PsGetCurrentThread(), &s->client, &s->client_process);
    g_stress = s;
    s->running = (LONG)s->threads;
    for (i = 0; i < s->threads; i++)
    {
        s->t[i].index = i;
        if (thread_start(&s->t[i].thread, stress_main, &s->t[i]) < 0)
        {
            /* Threads not started never run: account for them, stop the rest. */
            __atomic_sub_fetch(&s->running, (LONG)(s->threads - i), __ATOMIC_ACQ_REL);
            s->threads = i;
            stress_end(TRUE, NULL, "stress aborted (thread creation failed)");
            return STATUS_INSUFFICIENT_RESOURCES;
        }
    }
    LOG("stress: %lu threads, %lu ops each (0: until stopped), %lu names, %lu/s for %lu s (0: unpaced)\n",
        s->threads, s->ops_per_thread, s->nentries, s->rate, req.DurationSeconds);
    fill_header(buf, sizeof(FLTD_HEADER));
    *info = sizeof(FLTD_HEADER);
    return STATUS_SUCCESS;
}

static NTSTATUS handle_ioctl(ULONG code, void *buf, ULONG in_len, ULONG out_len, ULONG_PTR *info)
{
    switch (code)
    {
    case FLTD_IOCTL_INFO:
    {
        FLTD_INFO i;
        ULONG k;
        if (!check_header(buf, in_len, sizeof(FLTD_HEADER)) || out_len < sizeof(i)) return STATUS_INVALID_PARAMETER;
        memset(&i, 0, sizeof(i));
        fill_header(&i.Header, sizeof(i));
        i.FilterHandle = (ULONG64)(ULONG_PTR)&g_filter;
        i.Registered = g_state == ST_REGISTERED || g_state == ST_FILTERING;
        i.Filtering = g_state == ST_FILTERING;
        i.RegistrationSize = g_filter.reg.Size;
        i.RegistrationVersion = g_filter.reg.Version;
        i.RegistrationFlags = g_filter.reg.Flags;
        i.RegistrationProblems = g_filter.problems;
        i.OperationCount = g_filter.nops;
        i.UnloadInstalled = g_filter.driver && g_filter.driver->DriverUnload != NULL;
        for (k = 0; k < g_filter.nops && k < FLTD_MAX_OPERATIONS; k++)
        {
            i.OperationMajor[k] = g_filter.ops[k].MajorFunction;
            i.OperationHasPre[k] = g_filter.ops[k].PreOperation != NULL;
            i.OperationHasPost[k] = g_filter.ops[k].PostOperation != NULL;
        }
        i.HasFilterUnload = g_filter.reg.FilterUnloadCallback != NULL;
        i.HasInstanceSetup = g_filter.reg.InstanceSetupCallback != NULL;
        i.HasQueryTeardown = g_filter.reg.InstanceQueryTeardownCallback != NULL;
        i.HasContexts = g_filter.reg.ContextRegistration != NULL;
        for (k = 0; k < FLTD_VOLUMES; k++)
        {
            i.InstanceSetupStatus[k] = g_volumes[k].setup_status;
            i.Attached[k] = g_volumes[k].attached;
        }
        i.CallerPid = (ULONG)(ULONG_PTR)PsGetThreadProcessId(PsGetCurrentThread());
        i.InFlight = (ULONG)rundown_holders(&g_callbacks);
        i.Held = (ULONG)g_held;
        i.AsyncQueued = g_async_count;
        i.CallbacksTotal = (ULONG64)g_callbacks_total;
        i.PoolLive = (ULONG64)g_pool_live;
        i.RequestorCalls = (ULONG64)g_requestor_calls;
        memcpy(buf, &i, sizeof(i));
        *info = sizeof(i);
        return STATUS_SUCCESS;
    }
    case FLTD_IOCTL_OP:
        return ioctl_op(buf, in_len, out_len, info);
    case FLTD_IOCTL_STRESS:
        return ioctl_stress(buf, in_len, out_len, info);
    case FLTD_IOCTL_STRESS_END:
    {
        FLTD_STRESS_END e;
        FLTD_STRESS_REPORT r;
        if (!check_header(buf, in_len, sizeof(e)) || out_len < sizeof(r)) return STATUS_INVALID_PARAMETER;
        memcpy(&e, buf, sizeof(e));
        if (!g_stress) return STATUS_NOT_FOUND;
        if (e.Stop > FLTD_STRESS_END_PEEK) return STATUS_INVALID_PARAMETER;
        memset(&r, 0, sizeof(r));
        fill_header(&r.Header, sizeof(r));
        if (e.Stop == FLTD_STRESS_END_PEEK)
        {
            /* A snapshot: counters are read while the threads may add to them. */
            r.Threads = g_stress->threads;
            r.Running = (ULONG)__atomic_load_n(&g_stress->running, __ATOMIC_ACQUIRE);
            r.Tally = g_stress->tally;
        }
        else
            stress_end(e.Stop == FLTD_STRESS_END_STOP, &r, e.Stop ? "stress stopped" : "stress finished");
        memcpy(buf, &r, sizeof(r));
        *info = sizeof(r);
        return STATUS_SUCCESS;
    }
    case FLTD_IOCTL_WINDOW:
    {
        FLTD_WINDOW w;
        LONG64 cur, next;
        if (!check_header(buf, in_len, sizeof(w)) || out_len < sizeof(FLTD_HEADER)) return STATUS_INVALID_PARAMETER;
        memcpy(&w, buf, sizeof(w));
        cur = __atomic_load_n(&g_window, __ATOMIC_ACQUIRE);
        /* Each open starts a new generation; closing keeps it but clears the bit. */
        next = w.Open ? (((cur >> 1) + 1) << 1) | 1 : (cur & ~1LL);
        __atomic_store_n(&g_window, next, __ATOMIC_RELEASE);
        LOG("enforce window %s (generation %I64d)\n", w.Open ? "open" : "closed", next >> 1);
        fill_header(buf, sizeof(FLTD_HEADER));
        *info = sizeof(FLTD_HEADER);
        return STATUS_SUCCESS;
    }
    case FLTD_IOCTL_ASYNC_WAIT:
    {
        FLTD_ASYNC_WAIT w;
        FLTD_ASYNC_REPORT *r;
        if (!check_header(buf, in_len, sizeof(w)) || out_len < sizeof(FLTD_ASYNC_REPORT)) return STATUS_INVALID_PARAMETER;
        memcpy(&w, buf, sizeof(w));
        if (w.Release) KeSetEvent(&g_release, 0, FALSE);
        r = buf; /* the system buffer holds max(in, out): out is the larger */
        memset(r, 0, sizeof(*r));
        fill_header(&r->Header, sizeof(*r));
        r->Count = async_collect(r->Results);
        KeResetEvent(&g_release);
        *info = sizeof(*r);
        return STATUS_SUCCESS;
    }
    default:
        return STATUS_INVALID_DEVICE_REQUEST;
    }
}

static NTSTATUS WINAPI ctl_dispatch(DEVICE_OBJECT *dev, IRP *irp)
{
    IO_STACK_LOCATION *sl = IoGetCurrentIrpStackLocation(irp);
    NTSTATUS s = STATUS_SUCCESS;
    ULONG_PTR info = 0;
    (void)dev;
    if (!rundown_acquire(&g_dispatch))
        s = STATUS_DELETE_PENDING;
    else
    {
        if (sl->MajorFunction == IRP_MJ_DEVICE_CONTROL)
            s = handle_ioctl(sl->Parameters.DeviceIoControl.IoControlCode, irp->AssociatedIrp.SystemBuffer,
                             sl->Parameters.DeviceIoControl.InputBufferLength,
                             sl->Parameters.DeviceIoControl.OutputBufferLength, &info);
        rundown_release(&g_dispatch);
    }
    irp->IoStatus.Status = s;
    irp->IoStatus.Information = s < 0 ? 0 : info;
    IofCompleteRequest(irp, IO_NO_INCREMENT);
    return s;
}

static NTSTATUS WINAPI ctl_driver_init(DRIVER_OBJECT *drv, UNICODE_STRING *path)
{
    UNICODE_STRING dn, ln;
    NTSTATUS s;
    (void)path;
    drv->MajorFunction[IRP_MJ_CREATE] = ctl_dispatch;
    drv->MajorFunction[IRP_MJ_CLOSE] = ctl_dispatch;
    drv->MajorFunction[IRP_MJ_CLEANUP] = ctl_dispatch;
    drv->MajorFunction[IRP_MJ_DEVICE_CONTROL] = ctl_dispatch;
    g_ctl_driver = drv;
    RtlInitUnicodeString(&dn, FLTD_DEVICE_NAME);
    RtlInitUnicodeString(&ln, FLTD_LINK_NAME);
    s = IoCreateDevice(drv, 0, &dn, FILE_DEVICE_UNKNOWN, 0, FALSE, &g_ctl_device);
    if (s < 0) return s;
    s = IoCreateSymbolicLink(&ln, &dn);
    g_ctl_link = s >= 0;
    return s;
}

static void ctl_create(void)
{
    UNICODE_STRING n;
    NTSTATUS s;
    rundown_reset(&g_dispatch);
    RtlInitUnicodeString(&n, FLTD_DRIVER_NAME);
    s = IoCreateDriver(&n, ctl_driver_init);
    LOG("control device %s (0x%lx)\n", s >= 0 ? "created" : "FAILED", (ULONG)s);
}

static void ctl_delete(void)
{
    UNICODE_STRING ln;
    rundown_close(&g_dispatch);
    rundown_wait(&g_dispatch);
    if (g_ctl_link)
    {
        RtlInitUnicodeString(&ln, FLTD_LINK_NAME);
        IoDeleteSymbolicLink(&ln);
        g_ctl_link = FALSE;
    }
    if (g_ctl_device) IoDeleteDevice(g_ctl_device);
    g_ctl_device = NULL;
    if (g_ctl_driver) IoDeleteDriver(g_ctl_driver);
    g_ctl_driver = NULL;
}

/* ------------------------------------------------------------------------
 * Registration
 * --------------------------------------------------------------------- */
static SIZE_T registration_size(USHORT version)
{
    switch (version)
    {
    case FLT_REGISTRATION_VERSION_0203: return sizeof(FLT_REGISTRATION);
    case FLT_REGISTRATION_VERSION_0202: return offsetof(FLT_REGISTRATION, SectionNotificationCallback);
    default: return 0;
    }
}

static ULONG check_registration(const FLT_REGISTRATION *r)
{
    ULONG p = 0, i, j;
    const ULONG known = FLTFL_REGISTRATION_DO_NOT_SUPPORT_SERVICE_STOP | FLTFL_REGISTRATION_SUPPORT_NPFS_MSFS |
                        FLTFL_REGISTRATION_SUPPORT_DAX_VOLUME | FLTFL_REGISTRATION_SUPPORT_WCOS;
    SIZE_T want = registration_size(r->Version);
    if (!want) p |= FLTD_R_VERSION;
    else if (r->Size != want) p |= FLTD_R_SIZE;
    if (r->Flags & ~known) p |= FLTD_R_FLAGS;
    if (r->ContextRegistration)
    {
        /* This double supports no contexts; a list must at least be terminated. */
        const FLT_CONTEXT_REGISTRATION *c = r->ContextRegistration;
        for (i = 0; i < 8 && c[i].ContextType != FLT_CONTEXT_END; i++)
            ;
        if (i == 8) p |= FLTD_R_CONTEXTS;
    }
    if (r->OperationRegistration)
    {
        const FLT_OPERATION_REGISTRATION *o = r->OperationRegistration;
        for (i = 0; i < FLTD_MAX_OPERATIONS && o[i].MajorFunction != IRP_MJ_OPERATION_END; i++)
        {
            /* IRP major functions 0..0x1b; fast-I/O and FsFilter pseudo-ops are negative (0xe9..0xff). */
            if ((o[i].MajorFunction > 0x1b && o[i].MajorFunction < 0xe9) || o[i].Reserved1 ||
                (!o[i].PreOperation && !o[i].PostOperation))
                p |= FLTD_R_OPERATIONS;
            for (j = 0; j < i; j++)
                if (o[j].MajorFunction == o[i].MajorFunction) p |= FLTD_R_OPERATIONS;
        }
        if (i == FLTD_MAX_OPERATIONS) p |= FLTD_R_TERMINATOR;
    }
    return p;
}

static void WINAPI fltd_driver_unload(DRIVER_OBJECT *drv);

NTSTATUS WINAPI FltRegisterFilter(PDRIVER_OBJECT driver, const FLT_REGISTRATION *reg, PFLT_FILTER *ret)
{
    ULONG problems, i;
    if (!driver || !reg || !ret) return STATUS_INVALID_PARAMETER;
    resolve_time();
    if (g_state == ST_REGISTERED || g_state == ST_FILTERING || g_state == ST_UNREGISTERING)
    {
        LOG("FltRegisterFilter: a filter is already registered\n");
        return STATUS_OBJECT_NAME_COLLISION;
    }
    memset(&g_filter, 0, sizeof(g_filter));
    problems = check_registration(reg);
    g_filter.problems = problems;
    g_filter.reg.Size = reg->Size;
    g_filter.reg.Version = reg->Version;
    g_filter.reg.Flags = reg->Flags;
    if (problems)
    {
        LOG("FltRegisterFilter: registration rejected (problems 0x%lx, size %u, version 0x%x, flags 0x%lx)\n", problems,
            reg->Size, reg->Version, reg->Flags);
        return STATUS_INVALID_PARAMETER;
    }
    /* The copy (Size bytes: a 0x0202 registration has no SectionNotificationCallback). */
    memcpy(&g_filter.reg, reg, reg->Size);
    for (i = 0; reg->OperationRegistration && reg->OperationRegistration[i].MajorFunction != IRP_MJ_OPERATION_END; i++)
        g_filter.ops[i] = reg->OperationRegistration[i];
    g_filter.nops = i;
    g_filter.reg.OperationRegistration = g_filter.ops;
    g_filter.magic = FILTER_MAGIC;
    g_filter.driver = driver;

    /* Volumes: \Device\NamedPipe (NPFS) and a disk volume (NTFS). */
    for (i = 0; i < FLTD_VOLUMES; i++)
    {
        VOLUME *v = &g_volumes[i];
        v->name = i == FLTD_VOLUME_NPFS ? "\\Device\\NamedPipe" : "\\Device\\HarddiskVolume1";
        v->device_type = i == FLTD_VOLUME_NPFS ? FILE_DEVICE_NAMED_PIPE : FILE_DEVICE_DISK_FILE_SYSTEM;
        v->fs_type = i == FLTD_VOLUME_NPFS ? FLT_FSTYPE_NPFS : FLT_FSTYPE_NTFS;
        v->volume.magic = VOLUME_MAGIC;
        v->volume.index = i;
        v->instance.magic = INSTANCE_MAGIC;
        v->instance.index = i;
        v->setup_status = -1;
        v->attached = FALSE;
        if (!v->root) v->root = pool_alloc(FLTD_FILE_OBJECT_SIZE);
        if (v->root)
        {
            v->root->Type = 5;
            v->root->Size = FLTD_FILE_OBJECT_SIZE;
        }
    }
    rundown_reset(&g_callbacks);
    KeInitializeEvent(&g_release, NotificationEvent, FALSE);
    g_held = 0;
    g_window = 0;
    g_callbacks_total = 0;
    g_requestor_calls = 0;

    /* As the filter manager: the driver's unload goes through us. */
    if (!(reg->Flags & FLTFL_REGISTRATION_DO_NOT_SUPPORT_SERVICE_STOP)) driver->DriverUnload = fltd_driver_unload;
    g_state = ST_REGISTERED;
    *ret = &g_filter;
    ctl_create();
    LOG("FltRegisterFilter: filter %p, size %u, version 0x%x, flags 0x%lx, %lu operations\n", (void *)&g_filter,
        reg->Size, reg->Version, reg->Flags, g_filter.nops);
    return STATUS_SUCCESS;
}

NTSTATUS WINAPI FltStartFiltering(PFLT_FILTER filter)
{
    ULONG i;
    if (filter != &g_filter || g_filter.magic != FILTER_MAGIC || g_state != ST_REGISTERED)
    {
        LOG("FltStartFiltering: bad filter %p or state %ld\n", (void *)filter, g_state);
        return STATUS_INVALID_PARAMETER;
    }
    for (i = 0; i < FLTD_VOLUMES; i++)
    {
        VOLUME *v = &g_volumes[i];
        FLT_RELATED_OBJECTS objs;
        NTSTATUS s = STATUS_SUCCESS;
        /* Without SUPPORT_NPFS_MSFS the filter manager never offers NPFS/MSFS volumes. */
        if (v->fs_type == FLT_FSTYPE_NPFS && !(g_filter.reg.Flags & FLTFL_REGISTRATION_SUPPORT_NPFS_MSFS)) continue;
        memset(&objs, 0, sizeof(objs));
        objs.Size = sizeof(objs);
        objs.Filter = &g_filter;
        objs.Volume = (PFLT_VOLUME)&v->volume;
        objs.Instance = (PFLT_INSTANCE)&v->instance;
        if (g_filter.reg.InstanceSetupCallback)
            s = g_filter.reg.InstanceSetupCallback((PCFLT_RELATED_OBJECTS)&objs,
                                                   FLTFL_INSTANCE_SETUP_AUTOMATIC_ATTACHMENT, v->device_type,
                                                   v->fs_type);
        v->setup_status = s;
        v->attached = s >= 0;
        LOG("InstanceSetup %s (type %d): 0x%lx, %s\n", v->name, (int)v->fs_type, (ULONG)s,
            v->attached ? "attached" : "not attached");
    }
    g_state = ST_FILTERING;
    return STATUS_SUCCESS;
}

static void unregister(const char *why)
{
    ULONG64 t0 = now_us();
    LONG64 in_flight;
    ULONG i, async_n;
    /* Stop the double's own threads first (each finishes the operation it
     * is in), then refuse new callbacks and wait for those in flight.
     * (KeSetEvent can wait on Wine's global sync lock, which callbacks
     * waiting on the driver's semaphore contend for: stop first.) */
    if (g_stress) __atomic_store_n(&g_stress->stop, 1, __ATOMIC_RELEASE);
    g_state = ST_UNREGISTERING;
    rundown_close(&g_callbacks);
    in_flight = rundown_holders(&g_callbacks);
    KeSetEvent(&g_release, 0, FALSE);
    rundown_wait(&g_callbacks);
    LOG("FltUnregisterFilter (%s): %I64d callbacks in flight at the call, drained in %I64u us\n", why, in_flight,
        now_us() - t0);
    stress_end(TRUE, NULL, "stress at unregistration");
    async_n = async_collect(NULL);
    if (async_n) LOG("FltUnregisterFilter: %lu queued operations joined\n", async_n);
    for (i = 0; i < FLTD_VOLUMES; i++)
    {
        VOLUME *v = &g_volumes[i];
        if (v->attached)
        {
            FLT_RELATED_OBJECTS objs;
            memset(&objs, 0, sizeof(objs));
            objs.Size = sizeof(objs);
            objs.Filter = &g_filter;
            objs.Volume = (PFLT_VOLUME)&v->volume;
            objs.Instance = (PFLT_INSTANCE)&v->instance;
            if (g_filter.reg.InstanceTeardownStartCallback)
                g_filter.reg.InstanceTeardownStartCallback((PCFLT_RELATED_OBJECTS)&objs,
                                                           FLTFL_INSTANCE_TEARDOWN_FILTER_UNLOAD);
            if (g_filter.reg.InstanceTeardownCompleteCallback)
                g_filter.reg.InstanceTeardownCompleteCallback((PCFLT_RELATED_OBJECTS)&objs,
                                                              FLTFL_INSTANCE_TEARDOWN_FILTER_UNLOAD);
            v->attached = FALSE;
        }
        pool_free(v->root, FLTD_FILE_OBJECT_SIZE);
        v->root = NULL;
    }
    ctl_delete();
    g_state = ST_UNREGISTERED;
    LOG("unregistered; %I64u callbacks in all, %I64u requestor queries; pool allocations outstanding: %I64d\n",
        (ULONG64)g_callbacks_total, (ULONG64)g_requestor_calls, (LONG64)g_pool_live);
}

void WINAPI FltUnregisterFilter(PFLT_FILTER filter)
{
    if (filter != &g_filter || g_filter.magic != FILTER_MAGIC ||
        (g_state != ST_REGISTERED && g_state != ST_FILTERING))
    {
        LOG("VIOLATION: FltUnregisterFilter(%p) in state %ld\n", (void *)filter, g_state);
        return;
    }
    unregister("FltUnregisterFilter");
}

/* The driver's DriverUnload while the filter is registered: as the filter
 * manager, call FilterUnloadCallback (mandatory: the service is stopping),
 * which must unregister the filter. */
static void WINAPI fltd_driver_unload(DRIVER_OBJECT *drv)
{
    NTSTATUS s = STATUS_SUCCESS;
    (void)drv;
    LOG("DriverUnload: calling FilterUnloadCallback\n");
    if (g_filter.reg.FilterUnloadCallback) s = g_filter.reg.FilterUnloadCallback(FLTFL_FILTER_UNLOAD_MANDATORY);
    if (g_state != ST_UNREGISTERED)
    {
        LOG("VIOLATION: FilterUnloadCallback returned 0x%lx without FltUnregisterFilter\n", (ULONG)s);
        unregister("forced at DriverUnload");
    }
    LOG("DriverUnload: done (FilterUnloadCallback 0x%lx)\n", (ULONG)s);
}

PEPROCESS WINAPI FltGetRequestorProcess(PFLT_CALLBACK_DATA data)
{
    __atomic_add_fetch(&g_requestor_calls, 1, __ATOMIC_RELAXED);
    maybe_hold(data);
    return requestor_process(data);
}

ULONG WINAPI FltGetRequestorProcessId(PFLT_CALLBACK_DATA data)
{
    PEPROCESS p;
    __atomic_add_fetch(&g_requestor_calls, 1, __ATOMIC_RELAXED);
    p = requestor_process(data);
    return p ? (ULONG)(ULONG_PTR)PsGetProcessId(p) : 0;
}

/* Never called by Wine's loader for a native-subsystem DLL (see above). */
BOOL WINAPI FltDoubleEntry(void *module, DWORD reason, void *reserved)
{
    (void)module;
    (void)reason;
    (void)reserved;
    return TRUE;
}
