/* Test-only shim: Rust std for x86_64-pc-windows-gnu imports ProcessPrng
 * from bcryptprimitives.dll, which Wine 8 lacks (FACTS.md). Built as
 * bcryptprimitives.dll and placed beside the test executables; it forwards
 * to advapi32's SystemFunction036 (RtlGenRandom). Never shipped. */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    while (len > 0) {
        ULONG chunk = len > 0x10000000 ? 0x10000000 : (ULONG)len;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        len -= chunk;
    }
    return TRUE;
}
