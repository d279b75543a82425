/* SPDX-License-Identifier: MIT OR Apache-2.0
 *
 * mbtest: a multiboot (version 1) test kernel for rxen's multiboot path (built by
 * scripts/build-multiboot-kernel; loader/src/kernel/multiboot.rs). It checks what the
 * Multiboot Specification 0.6.96 promises at entry and prints what it found, one
 * "MBTEST: " line each, on COM1 and on port 0xe9 (QEMU's debugcon; Xen's HVM debug port):
 *
 *   magic ok | bad magic       %eax == 0x2BADB002
 *   bss zero | bss dirty       a .bss word is zero (the loader zeroed to bss_end_addr)
 *   loader=NAME                boot_loader_name (flag 9)
 *   cmdline=TEXT               cmdline (flag 2)
 *   mem_upper_kib=HEX          mem_upper (flag 0)
 *   mmap_ram=HEX               memory-map entries of type 1 (flag 6)
 *   mods=HEX                   mods_count (flag 3)
 *   mod0=TEXT                  module 0's first line (at most 64 bytes)
 *   mod0_page_aligned=yes|no   mod_start % 4096 == 0 (the header asks, flag 0)
 *   done
 *
 * then exits QEMU through isa-debug-exit (port 0xf4, value 0x31: exit status 99), or on
 * Xen powers the domain off (SCHEDOP_shutdown), or halts. Built twice: as an ELF (loaded by its program headers) and, with AOUT defined,
 * as a flat binary loaded by the header's address fields (flag 16).
 */
    .set MB_MAGIC, 0x1BADB002
.ifdef AOUT
    .set MB_FLAGS, (1 << 0) | (1 << 1) | (1 << 16)
.else
    .set MB_FLAGS, (1 << 0) | (1 << 1)
.endif

    .section .text
    .code32
    .globl _start
header:
    .balign 4
    .long MB_MAGIC
    .long MB_FLAGS
    .long -(MB_MAGIC + MB_FLAGS)
.ifdef AOUT
    .long header                    /* header_addr */
    .long header                    /* load_addr: the file starts with this header */
    .long _edata                    /* load_end_addr */
    .long _end                      /* bss_end_addr */
    .long _start                    /* entry_addr */
.endif

_start:
    cli
    mov     $stack_top, %esp
    mov     %ebx, %ebp              /* multiboot_info, kept in %ebp throughout */
    cmp     $0x2BADB002, %eax
    je      1f
    push    %eax
    mov     $s_badmagic, %esi
    call    puts
    pop     %eax
    call    puthex
    call    newline
    mov     $0x03, %eax
    jmp     finish
1:  mov     $s_magic, %esi
    call    puts

    mov     $s_bsszero, %esi
    cmpl    $0, bss_canary
    je      2f
    mov     $s_bssdirty, %esi
2:  call    puts

    mov     0(%ebp), %edi           /* flags */

    bt      $9, %edi
    jnc     3f
    mov     $s_loader, %esi
    call    puts
    mov     64(%ebp), %esi
    call    puts
    call    newline

3:  bt      $2, %edi
    jnc     4f
    mov     $s_cmdline, %esi
    call    puts
    mov     16(%ebp), %esi
    call    puts
    call    newline

4:  bt      $0, %edi
    jnc     5f
    mov     $s_memupper, %esi
    call    puts
    mov     8(%ebp), %eax
    call    puthex
    call    newline

5:  bt      $6, %edi
    jnc     7f
    mov     48(%ebp), %ebx          /* mmap_addr */
    mov     44(%ebp), %ecx
    add     %ebx, %ecx              /* end */
    xor     %edx, %edx              /* RAM entries */
    mov     $256, %esi              /* budget: no more entries than that */
6:  cmp     %ecx, %ebx
    jae     61f
    dec     %esi
    jz      61f
    cmpl    $1, 20(%ebx)            /* type, after size (4) + base (8) + length (8) */
    jne     60f
    inc     %edx
60: add     0(%ebx), %ebx           /* size excludes itself */
    add     $4, %ebx
    jmp     6b
61: mov     $s_mmap, %esi
    call    puts
    mov     %edx, %eax
    call    puthex
    call    newline

7:  bt      $3, %edi
    jnc     9f
    mov     $s_mods, %esi
    call    puts
    mov     20(%ebp), %eax
    call    puthex
    call    newline
    cmpl    $0, 20(%ebp)
    je      9f
    mov     24(%ebp), %ebx          /* the module array */
    mov     $s_mod0, %esi
    call    puts
    mov     0(%ebx), %esi           /* mod_start */
    mov     4(%ebx), %ecx           /* mod_end */
    mov     $64, %edx
8:  cmp     %ecx, %esi
    jae     81f
    movzbl  (%esi), %eax
    cmp     $10, %al
    je      81f
    call    putc
    inc     %esi
    dec     %edx
    jnz     8b
81: call    newline
    mov     $s_aligned, %esi
    call    puts
    mov     $s_yes, %esi
    testl   $0xfff, 0(%ebx)
    jz      82f
    mov     $s_no, %esi
82: call    puts
    call    newline

9:  mov     $s_done, %esi
    call    puts
    mov     $0x31, %eax
finish:
    mov     $0xf4, %dx              /* isa-debug-exit: QEMU exits (value << 1) | 1 */
    out     %eax, %dx
    call    xen_poweroff            /* still here: not QEMU's isa-debug-exit; Xen? */
10: hlt
    jmp     10b

/* On Xen (a PVH domain): find Xen's CPUID leaves, have Xen fill a hypercall page (the
 * MSR leaf base+2 names), and SCHEDOP_shutdown(poweroff) through it (xen.h: sched_op is
 * hypercall 29; 32-bit guests pass arguments in %ebx, %ecx). Returns if not on Xen. */
xen_poweroff:
    mov     $0x40000000, %esi
1:  mov     %esi, %eax
    cpuid
    cmp     $0x566e6558, %ebx       /* "XenV" */
    jne     2f
    cmp     $0x65584d4d, %ecx       /* "MMXe" */
    jne     2f
    cmp     $0x4d4d566e, %edx       /* "nVMM" */
    je      3f
2:  add     $0x100, %esi
    cmp     $0x40010000, %esi
    jb      1b
    ret
3:  lea     2(%esi), %eax
    cpuid
    mov     %ebx, %ecx              /* the MSR */
    mov     $hypercall_page, %eax
    xor     %edx, %edx
    wrmsr
    mov     $2, %ebx                /* SCHEDOP_shutdown */
    mov     $shutdown_reason, %ecx
    call    hypercall_page + 29 * 32
    ret

/* putc(%al): COM1 (bounded wait for the transmitter) and port 0xe9. Keeps every register. */
putc:
    push    %edx
    push    %ecx
    push    %eax
    mov     $100000, %ecx
1:  mov     $0x3fd, %dx
    in      %dx, %al
    test    $0x20, %al
    jnz     2f
    loop    1b
2:  pop     %eax
    mov     $0x3f8, %dx
    out     %al, %dx
    mov     $0xe9, %dx
    out     %al, %dx
    pop     %ecx
    pop     %edx
    ret

/* puts(%esi): a NUL-terminated string, at most 256 bytes. Keeps every register. */
puts:
    push    %esi
    push    %ecx
    push    %eax
    mov     $256, %ecx
1:  movzbl  (%esi), %eax
    test    %al, %al
    jz      2f
    call    putc
    inc     %esi
    loop    1b
2:  pop     %eax
    pop     %ecx
    pop     %esi
    ret

newline:
    push    %eax
    mov     $10, %al
    call    putc
    pop     %eax
    ret

/* puthex(%eax): eight hex digits. Keeps every register. */
puthex:
    push    %ecx
    push    %ebx
    mov     %eax, %ebx
    mov     $8, %ecx
1:  rol     $4, %ebx
    mov     %ebx, %eax
    and     $0xf, %eax
    movzbl  hexdigits(%eax), %eax
    call    putc
    loop    1b
    mov     %ebx, %eax
    pop     %ebx
    pop     %ecx
    ret

    .section .rodata
hexdigits:  .ascii "0123456789abcdef"
s_magic:    .asciz "MBTEST: magic ok\n"
s_badmagic: .asciz "MBTEST: bad magic "
s_bsszero:  .asciz "MBTEST: bss zero\n"
s_bssdirty: .asciz "MBTEST: bss dirty\n"
s_loader:   .asciz "MBTEST: loader="
s_cmdline:  .asciz "MBTEST: cmdline="
s_memupper: .asciz "MBTEST: mem_upper_kib="
s_mmap:     .asciz "MBTEST: mmap_ram="
s_mods:     .asciz "MBTEST: mods="
s_mod0:     .asciz "MBTEST: mod0="
s_aligned:  .asciz "MBTEST: mod0_page_aligned="
s_yes:      .asciz "yes"
s_no:       .asciz "no"
s_done:     .asciz "MBTEST: done\n"

    .section .data
shutdown_reason: .long 0            /* SHUTDOWN_poweroff */

    .section .bss
    .balign 4096
hypercall_page: .skip 4096
bss_canary: .long 0
    .balign 16
stack:      .skip 4096
stack_top:
