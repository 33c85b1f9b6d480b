/*
 * The filter-manager double's control protocol, shared by the double
 * (fltmgr.c, kernel side, built against Wine's DDK headers) and its client
 * (fltctl.c, user mode, built against mingw-w64's headers). TEST ONLY: never
 * shipped (scripts/driver-test.sh checks the package).
 *
 * Every message starts with FLTD_HEADER (magic, version, the message's own
 * size); every structure's size is asserted below, so the two sides cannot
 * disagree silently. All IOCTLs are METHOD_BUFFERED.
 *
 * Also here: the few filter-manager definitions Wine's ddk/fltkernel.h
 * lacks (kernel side only). Their values and layout are checked against the
 * driver's Rust definitions (windows-sys) by the layout probe
 * (scripts/layout-probe.sh, header set "double").
 */
#ifndef FLTDOUBLE_H
#define FLTDOUBLE_H

#ifdef FLTD_KERNEL
#include <ntstatus.h>
#define WIN32_NO_STATUS
#include <windef.h>
#include <winternl.h>
#include <ddk/fltkernel.h>
#else
#include <windows.h>
#include <winioctl.h>
#endif
#include <stddef.h>

#define FLTD_STATIC_ASSERT(e, m) _Static_assert(e, m)

/* ------------------------------------------------------------------------
 * Filter-manager definitions missing from Wine's ddk/fltkernel.h
 * (values from the WDK's fltKernel.h; checked by the layout probe).
 * --------------------------------------------------------------------- */
#ifdef FLTD_KERNEL
typedef struct _FLT_VOLUME *PFLT_VOLUME;

/* fltKernel.h: FLT_RELATED_OBJECTS (Wine keeps it opaque). */
typedef struct _FLT_RELATED_OBJECTS {
    USHORT Size;
    USHORT TransactionContext;
    PFLT_FILTER Filter;
    PFLT_VOLUME Volume;
    PFLT_INSTANCE Instance;
    PFILE_OBJECT FileObject;
    void *Transaction;
} FLT_RELATED_OBJECTS;

#define FLT_REGISTRATION_VERSION_0202 0x0202
#define FLT_REGISTRATION_VERSION_0203 0x0203
#define FLTFL_REGISTRATION_DO_NOT_SUPPORT_SERVICE_STOP 0x00000001
#define FLTFL_REGISTRATION_SUPPORT_NPFS_MSFS 0x00000002
#define FLTFL_REGISTRATION_SUPPORT_DAX_VOLUME 0x00000004
#define FLTFL_REGISTRATION_SUPPORT_WCOS 0x00000008
#define IRP_MJ_OPERATION_END ((UCHAR)0x80)
#define FLT_CONTEXT_END 0xffff
#define FLTFL_CALLBACK_DATA_IRP_OPERATION 0x00000001
#define FLTFL_INSTANCE_SETUP_AUTOMATIC_ATTACHMENT 0x00000001
#define FLTFL_FILTER_UNLOAD_MANDATORY 0x00000001
#ifndef STATUS_FLT_DO_NOT_ATTACH
#define STATUS_FLT_DO_NOT_ATTACH ((NTSTATUS)0xC01C000F)
#endif
/* Device types (winioctl.h, which cannot be included beside Wine's wdm.h). */
#define FILE_DEVICE_DISK_FILE_SYSTEM 0x00000008
#define FILE_DEVICE_NAMED_PIPE 0x00000011
#define FILE_DEVICE_UNKNOWN 0x00000022
/* FILE_OBJECT as Windows x64 lays it out is 216 bytes; Wine's header
 * declares a shorter prefix (184). The double allocates the full size. */
#define FLTD_FILE_OBJECT_SIZE 216
FLTD_STATIC_ASSERT(FLTD_FILE_OBJECT_SIZE >= sizeof(FILE_OBJECT), "FILE_OBJECT fits");
FLTD_STATIC_ASSERT(sizeof(FLT_RELATED_OBJECTS) == 48, "FLT_RELATED_OBJECTS x64");
#endif

/* ------------------------------------------------------------------------
 * The control device
 * --------------------------------------------------------------------- */
#define FLTD_DEVICE_NAME L"\\Device\\PipeSensorFltDouble"
#define FLTD_LINK_NAME L"\\DosDevices\\PipeSensorFltDouble"
#define FLTD_USER_PATH L"\\\\.\\PipeSensorFltDouble"
#define FLTD_DRIVER_NAME L"\\Driver\\PipeSensorFltDouble"

#define FLTD_MAGIC 0x44544C46u /* "FLTD" */
#define FLTD_VERSION 1

#define FLTD_DEVICE_TYPE 0x8001
#define FLTD_CTL(f) (((ULONG)FLTD_DEVICE_TYPE << 16) | ((ULONG)(f) << 2) /* METHOD_BUFFERED, FILE_ANY_ACCESS */)
/* INFO: FLTD_HEADER -> FLTD_INFO */
#define FLTD_IOCTL_INFO FLTD_CTL(0x800)
/* OP: FLTD_OP_REQUEST + name -> FLTD_OP_RESULT (ASYNC/HOLD ops: Outcome
 * FLTD_OUTCOME_QUEUED; their results come from ASYNC_WAIT) */
#define FLTD_IOCTL_OP FLTD_CTL(0x801)
/* STRESS: FLTD_STRESS_REQUEST + entries -> FLTD_HEADER (started) */
#define FLTD_IOCTL_STRESS FLTD_CTL(0x802)
/* STRESS_END: FLTD_STRESS_END -> FLTD_STRESS_REPORT (stops or waits, joins;
 * or, FLTD_STRESS_END_PEEK, only reports: winedevice serves every request
 * of the process on one thread, so a waiting STRESS_END would hold back the
 * driver's own requests, the event service's reads among them) */
#define FLTD_IOCTL_STRESS_END FLTD_CTL(0x803)
/* WINDOW: FLTD_WINDOW -> FLTD_HEADER (opens / closes an enforce window) */
#define FLTD_IOCTL_WINDOW FLTD_CTL(0x804)
/* ASYNC_WAIT: FLTD_ASYNC_WAIT -> FLTD_ASYNC_REPORT (releases holds if
 * asked, waits for every queued op, returns their results) */
#define FLTD_IOCTL_ASYNC_WAIT FLTD_CTL(0x805)

typedef struct FLTD_HEADER {
    ULONG Magic;   /* FLTD_MAGIC */
    USHORT Version; /* FLTD_VERSION */
    USHORT Size;   /* size of this fixed message (without trailing data) */
} FLTD_HEADER;
FLTD_STATIC_ASSERT(sizeof(FLTD_HEADER) == 8, "header");

/* Volumes the double presents to the filter. */
#define FLTD_VOLUME_NPFS 0 /* \Device\NamedPipe, FLT_FSTYPE_NPFS */
#define FLTD_VOLUME_DISK 1 /* \Device\HarddiskVolume1, FLT_FSTYPE_NTFS */
#define FLTD_VOLUMES 2

/* FLTD_OP_REQUEST.Flags */
#define FLTD_OP_RELATIVE 0x01    /* RelatedFileObject = the volume's root file object */
#define FLTD_OP_BLOCK_CLASS 0x02 /* the name belongs to a block rule (enforce windows) */
#define FLTD_OP_ASYNC 0x04       /* run on a double thread; result via ASYNC_WAIT */
#define FLTD_OP_HOLD 0x08        /* ASYNC, and block inside FltGetRequestorProcess until released */

/* Requestor modes (KPROCESSOR_MODE). */
#define FLTD_KERNEL_MODE 0
#define FLTD_USER_MODE 1

/* Longest name a UNICODE_STRING holds (Length is a USHORT). */
#define FLTD_MAX_NAME_BYTES 0xFFFF

typedef struct FLTD_OP_REQUEST {
    FLTD_HEADER Header;
    UCHAR MajorFunction; /* IRP_MJ_CREATE_NAMED_PIPE (1) or IRP_MJ_CREATE (0) */
    UCHAR Volume;        /* FLTD_VOLUME_* */
    UCHAR RequestorMode; /* FLTD_KERNEL_MODE (op runs on a double system thread) or FLTD_USER_MODE */
    UCHAR Flags;         /* FLTD_OP_* */
    ULONG NameBytes;     /* FileName.Length, 0..FLTD_MAX_NAME_BYTES (odd allowed); the bytes follow */
} FLTD_OP_REQUEST;
FLTD_STATIC_ASSERT(sizeof(FLTD_OP_REQUEST) == 16, "op request");

/* FLTD_OP_RESULT.Outcome */
#define FLTD_OUTCOME_CALLBACK 1     /* the pre-operation callback ran */
#define FLTD_OUTCOME_NOT_ATTACHED 2 /* no instance on the volume: no callback */
#define FLTD_OUTCOME_UNFILTERED 3   /* filtering not started or the filter is unregistering */
#define FLTD_OUTCOME_QUEUED 4       /* ASYNC/HOLD: runs on a double thread */
#define FLTD_OUTCOME_FAILED 5       /* the double could not run it (no memory, no thread) */

/* FLTD_OP_RESULT.Violations: the callback broke the contract the filter
 * manager and Driver Verifier enforce. */
#define FLTD_V_BAD_RETURN 0x01          /* not a FLT_PREOP_* code valid here (no post-op, IRP op) */
#define FLTD_V_COMPLETE_NO_ERROR 0x02   /* FLT_PREOP_COMPLETE without an error status */
#define FLTD_V_IOSTATUS_CHANGED 0x04    /* IoStatus written but the operation passed down */
#define FLTD_V_COMPLETION_CONTEXT 0x08  /* completion context set without a post-operation */
#define FLTD_V_TOO_SLOW 0x10            /* returned after FLTD_CALLBACK_BOUND_MS */
#define FLTD_V_PARAMETERS_CHANGED 0x20  /* Iopb / target file object / name changed (no FltSetCallbackDataDirty) */
#define FLTD_V_REQUESTOR_PID 0x40       /* (unused by the double's own checks; reserved) */

/* A callback slower than this is reported: a hang detector, not a
 * performance limit (the driver's own wait for working memory is bounded
 * by WorkWaitMilliseconds, at most 60 s). */
#define FLTD_CALLBACK_BOUND_MS 120000

typedef struct FLTD_OP_RESULT {
    FLTD_HEADER Header;
    ULONG Outcome;          /* FLTD_OUTCOME_* */
    LONG PreopStatus;       /* what the callback returned (FLT_PREOP_*), -1 without callback */
    LONG IoStatus;          /* the status the requester gets */
    ULONG Violations;       /* FLTD_V_* */
    ULONG RequestorPid;     /* the pid FltGetRequestorProcessId returns for this op */
    ULONG CallbackMicros;   /* time spent in the callback (reported, never asserted) */
    ULONG64 Information;    /* IoStatus.Information */
} FLTD_OP_RESULT;
FLTD_STATIC_ASSERT(sizeof(FLTD_OP_RESULT) == 40, "op result");

/* Stress entries follow FLTD_STRESS_REQUEST: FLTD_STRESS_ENTRY, then
 * NameBytes bytes, then padding to 4. */
typedef struct FLTD_STRESS_ENTRY {
    UCHAR MajorFunction;
    UCHAR Flags;        /* FLTD_OP_RELATIVE | FLTD_OP_BLOCK_CLASS */
    USHORT NameBytes;
} FLTD_STRESS_ENTRY;
FLTD_STATIC_ASSERT(sizeof(FLTD_STRESS_ENTRY) == 4, "stress entry");

#define FLTD_MAX_THREADS 64
#define FLTD_MAX_ENTRIES 64
#define FLTD_STRESS_KERNEL_EVERY_4TH 0x01 /* every 4th op of a thread in kernel mode */

#define FLTD_MAX_RATE 100000          /* operations per second */
#define FLTD_MAX_RATE_SECONDS 600
typedef struct FLTD_STRESS_REQUEST {
    FLTD_HEADER Header;
    ULONG Threads;      /* 1..FLTD_MAX_THREADS */
    ULONG OpsPerThread; /* 0: until STRESS_END, unregistration or the end of DurationSeconds */
    ULONG Flags;        /* FLTD_STRESS_* */
    ULONG Entries;      /* 1..FLTD_MAX_ENTRIES; op i of a thread uses entry (i + thread) % Entries */
    /* 0: as fast as the threads go. Otherwise 1..FLTD_MAX_RATE: the threads
     * share one token bucket of RatePerSecond tokens a second, holding at
     * most Burst (0: Threads) tokens, and stop after DurationSeconds
     * (1..FLTD_MAX_RATE_SECONDS) of tokens. */
    ULONG RatePerSecond;
    ULONG Burst;
    ULONG DurationSeconds;
    ULONG Reserved; /* 0 */
} FLTD_STRESS_REQUEST;
FLTD_STATIC_ASSERT(sizeof(FLTD_STRESS_REQUEST) == 40, "stress request");

#define FLTD_STRESS_END_WAIT 0 /* wait until every thread finished its ops, join, free the run */
#define FLTD_STRESS_END_STOP 1 /* stop the threads now, join, free the run */
#define FLTD_STRESS_END_PEEK 2 /* report the tally so far; never waits, the run goes on */
typedef struct FLTD_STRESS_END {
    FLTD_HEADER Header;
    ULONG Stop; /* FLTD_STRESS_END_*: stop now, wait for the threads, or only report */
    ULONG Reserved;
} FLTD_STRESS_END;
FLTD_STATIC_ASSERT(sizeof(FLTD_STRESS_END) == 16, "stress end");

/* Tallies of a stress run (also printed by the double at unregistration). */
typedef struct FLTD_TALLY {
    ULONG64 Started;       /* operations begun */
    ULONG64 Callbacks;     /* ... whose pre-operation callback ran */
    ULONG64 NotAttached;   /* ... on a volume without an instance */
    ULONG64 Unfiltered;    /* ... while not filtering / unregistering */
    ULONG64 Failed;        /* ... the double could not run (no memory) */
    ULONG64 Denied;        /* callback completed the op with an error */
    ULONG64 Allowed;       /* callback let it through */
    ULONG64 KernelOps;     /* ops issued in kernel mode */
    ULONG64 Violations;    /* ops with any FLTD_V_* bit */
    ULONG64 BlockInWindow; /* block-class ops that ran entirely inside an enforce window */
    ULONG64 BlockLeaks;    /* ... of which the callback let through: must be 0 */
    ULONG64 MaxCallbackMicros;
    ULONG64 ElapsedMicros; /* first op started .. last op ended */
} FLTD_TALLY;
FLTD_STATIC_ASSERT(sizeof(FLTD_TALLY) == 13 * 8, "tally");

typedef struct FLTD_STRESS_REPORT {
    FLTD_HEADER Header;
    ULONG Threads;
    ULONG Running; /* threads still running when the report was made (0 after a join) */
    FLTD_TALLY Tally;
} FLTD_STRESS_REPORT;
FLTD_STATIC_ASSERT(sizeof(FLTD_STRESS_REPORT) == 16 + 13 * 8, "stress report");

typedef struct FLTD_WINDOW {
    FLTD_HEADER Header;
    ULONG Open; /* 1: the filter is in enforce mode from now on; 0: it may leave it */
    ULONG Reserved;
} FLTD_WINDOW;
FLTD_STATIC_ASSERT(sizeof(FLTD_WINDOW) == 16, "window");

#define FLTD_MAX_ASYNC 64

typedef struct FLTD_ASYNC_WAIT {
    FLTD_HEADER Header;
    ULONG Release; /* 1: release held ops first */
    ULONG Reserved;
} FLTD_ASYNC_WAIT;
FLTD_STATIC_ASSERT(sizeof(FLTD_ASYNC_WAIT) == 16, "async wait");

typedef struct FLTD_ASYNC_REPORT {
    FLTD_HEADER Header;
    ULONG Count; /* results that follow, in submission order */
    ULONG Reserved;
    FLTD_OP_RESULT Results[FLTD_MAX_ASYNC];
} FLTD_ASYNC_REPORT;
FLTD_STATIC_ASSERT(sizeof(FLTD_ASYNC_REPORT) == 16 + FLTD_MAX_ASYNC * 40, "async report");

#define FLTD_MAX_OPERATIONS 16

/* FLTD_INFO.RegistrationProblems: what FltRegisterFilter found wrong
 * (it then failed with STATUS_INVALID_PARAMETER). */
#define FLTD_R_SIZE 0x01
#define FLTD_R_VERSION 0x02
#define FLTD_R_FLAGS 0x04
#define FLTD_R_OPERATIONS 0x08 /* bad major, duplicate, reserved field, no callbacks */
#define FLTD_R_TERMINATOR 0x10 /* no IRP_MJ_OPERATION_END within FLTD_MAX_OPERATIONS */
#define FLTD_R_CONTEXTS 0x20

typedef struct FLTD_INFO {
    FLTD_HEADER Header;
    ULONG64 FilterHandle;          /* the PFLT_FILTER handed to the filter (never Wine's 0xDEADBEAF) */
    ULONG Registered;              /* FltRegisterFilter succeeded and FltUnregisterFilter not yet called */
    ULONG Filtering;               /* FltStartFiltering succeeded */
    ULONG RegistrationSize;        /* as registered */
    ULONG RegistrationVersion;
    ULONG RegistrationFlags;
    ULONG RegistrationProblems;    /* FLTD_R_* seen at the last FltRegisterFilter (0) */
    ULONG OperationCount;          /* entries before the terminator */
    ULONG UnloadInstalled;         /* the double's DriverUnload is in the driver object */
    UCHAR OperationMajor[FLTD_MAX_OPERATIONS];
    UCHAR OperationHasPre[FLTD_MAX_OPERATIONS];
    UCHAR OperationHasPost[FLTD_MAX_OPERATIONS];
    ULONG HasFilterUnload, HasInstanceSetup, HasQueryTeardown, HasContexts;
    LONG InstanceSetupStatus[FLTD_VOLUMES]; /* what InstanceSetupCallback returned; -1: not called */
    ULONG Attached[FLTD_VOLUMES];
    ULONG CallerPid;               /* the pid the double sees for the caller of this IOCTL */
    ULONG InFlight;                /* callbacks running now */
    ULONG Held;                    /* ops blocked in FltGetRequestorProcess (HOLD) */
    ULONG AsyncQueued;             /* ASYNC/HOLD ops not yet collected */
    ULONG64 CallbacksTotal;        /* pre-operation callbacks run since registration */
    ULONG64 PoolLive;              /* the double's own pool allocations outstanding */
    ULONG64 RequestorCalls;        /* FltGetRequestorProcess + FltGetRequestorProcessId calls */
} FLTD_INFO;
FLTD_STATIC_ASSERT(sizeof(FLTD_INFO) == 8 + 8 + 8 * 4 + 3 * FLTD_MAX_OPERATIONS + 4 * 4 + 8 + 8 + 4 * 4 + 3 * 8, "info");

#endif /* FLTDOUBLE_H */
