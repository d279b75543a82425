/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/* PV entry for pv-boot (AT&T syntax, assembled by rustc via global_asm!).
 *
 * The Xen notes a PV domain builder requires (xen/include/public/elfnote.h; Xen's libelf
 * reads them, libelf-dominfo.c): LOADER "generic" (libelf loads only "generic" or Linux
 * images), XEN_VERSION "xen-3.0", VIRT_BASE 0 and PADDR_OFFSET 0 (virtual address =
 * pseudo-physical address in the builder's mapping: platform/xen/pv.rs), ENTRY, and
 * HYPERCALL_PAGE (the builder fills our page before we run).
 *
 * Entry (xen.h "start of day", xg_dom_x86.c vcpu_x86_64): 64-bit mode, paging on, %rsi =
 * start_info, %rsp = one page of builder stack, events masked. We switch to our own
 * stack, clear CR0.TS (fpu_taskswitch: the precompiled core uses SSE) and call
 * rxen_pv_main(start_info). .bss is already zero: the builder zeroes every PT_LOAD past
 * its file size, and must not be cleared here (the hypercall page lives there).
 */

    .macro xen_note type, size
    .balign 4
    .long 4                     /* n_namesz: "Xen\0" */
    .long \size
    .long \type
    .asciz "Xen"
    .balign 4
    .endm

    .section .note.Xen, "a", @note
    xen_note 6, 5               /* XEN_ELFNOTE_GUEST_OS */
    .asciz "rxen"
    xen_note 8, 8               /* XEN_ELFNOTE_LOADER */
    .asciz "generic"
    xen_note 5, 8               /* XEN_ELFNOTE_XEN_VERSION */
    .asciz "xen-3.0"
    xen_note 3, 8               /* XEN_ELFNOTE_VIRT_BASE */
    .quad 0
    xen_note 4, 8               /* XEN_ELFNOTE_PADDR_OFFSET */
    .quad 0
    xen_note 1, 8               /* XEN_ELFNOTE_ENTRY */
    .quad pv_start
    xen_note 2, 8               /* XEN_ELFNOTE_HYPERCALL_PAGE */
    .quad rxen_hypercall_page
    .balign 4

    .set HYPERCALL_FPU_TASKSWITCH, 5

    .section .text.entry64, "ax", @progbits
    .code64
    .globl pv_start
pv_start:
    cld
    mov     %rsi, %rbx                  /* start_info (callee-saved) */
    lea     pv_stack_top(%rip), %rsp
    xor     %edi, %edi
    call    rxen_hypercall_page + 32 * HYPERCALL_FPU_TASKSWITCH
    mov     %rbx, %rdi
    call    rxen_pv_main
1:  ud2
    jmp     1b

/* PV exception entry: Xen delivers vector v on the current stack with %rcx and %r11
 * pushed above the hardware-like frame (arch-x86/xen-x86_64.h); pop them and continue
 * in traps.S's stub for v, which sees the frame a CPU would have pushed. */
    .balign 16
    .globl rxen_pv_trap_stubs
rxen_pv_trap_stubs:
    .set vec, 0
    .rept 32
    .balign 16
    pop     %rcx
    pop     %r11
    jmp     rxen_trap_stubs + 16 * vec
    .set vec, vec + 1
    .endr

/* The handoff trampoline: one page of its own, which the next kernel's page tables map
 * at this same virtual address, holding its code, the mmuext_op list, a copy of the
 * mmuext_op hypercall stub (filled in by Rust from the hypercall page, which the new
 * tables do not map) and a small stack. The hypercall switches the page tables; its
 * return lands here in the new address space.
 *   rxen_pv_jump(nr_ops %rdi, entry %rsi, kernel rsp %rdx, start_info %rcx) -> ! */
    .section .rxen.tramp, "awx", @progbits
    .balign 4096
    .globl rxen_pv_tramp
rxen_pv_tramp:
    .globl rxen_pv_jump
rxen_pv_jump:
    mov     %rsi, %r12
    mov     %rdx, %r13
    mov     %rcx, %r14
    lea     rxen_pv_tramp_stack_top(%rip), %rsp
    mov     %rdi, %rsi                  /* count */
    lea     rxen_pv_tramp_ops(%rip), %rdi
    xor     %edx, %edx                  /* pdone: none */
    mov     $0x7ff0, %r10d              /* DOMID_SELF */
    call    rxen_pv_tramp_stub
    test    %rax, %rax
    jnz     2f
    mov     %r13, %rsp
    mov     %r14, %rsi
    xor     %eax, %eax
    xor     %ebx, %ebx
    xor     %ecx, %ecx
    xor     %edx, %edx
    xor     %edi, %edi
    xor     %ebp, %ebp
    xor     %r8d, %r8d
    xor     %r9d, %r9d
    xor     %r10d, %r10d
    xor     %r11d, %r11d
    jmp     *%r12
2:  ud2                             /* the switch failed: we cannot say so any more */
    jmp     2b
    .balign 64
    .globl rxen_pv_tramp_stub
rxen_pv_tramp_stub:
    .skip 32, 0xcc
    .balign 64
    .globl rxen_pv_tramp_ops
rxen_pv_tramp_ops:
    .skip 4 * 24
    .balign 16
    .skip 1024
rxen_pv_tramp_stack_top:
    .balign 4096

    .section .bss.pvstack, "aw", @nobits
    .balign 16
pv_stack:
    .skip 131072
pv_stack_top:

/* traps.S's IDT setup (PVH only) names the GDT slot pvh.S keeps for the TSS; pv-boot
 * never calls it (Xen takes the trap table instead), but the symbol must exist. */
    .section .bss.pvgdt, "aw", @nobits
    .balign 16
    .globl rxen_gdt_tss
rxen_gdt_tss:
    .skip 16
