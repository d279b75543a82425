/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/* CPU exceptions and stray interrupts (AT&T syntax, assembled by rustc via global_asm!).
 *
 * rxen_traps_init builds a 256-gate IDT and a 64-bit TSS, loads both, and returns. Every
 * gate is a 64-bit interrupt gate (interrupts stay off) that switches to IST1, a stack of
 * its own: the loader's code keeps the red zone (the host target's core is built with it),
 * which a frame pushed on the interrupted stack would overwrite. Gate v runs stub v at
 * rxen_trap_stubs + 16 * v; each stub pushes an error code of 0 where the CPU pushes none
 * (Intel SDM vol. 3, 6.13: vectors 8, 10-14, 17, 21, 29 and 30 have one), then its vector.
 *
 * An NMI (vector 2) or any vector >= 32 is an event the loader never asks for: it runs with
 * interrupts off and unmasks nothing. It is counted (rxen_stray_count, the last vector in
 * rxen_stray_vector and RIP in rxen_stray_rip: statics of platform/traps.rs) and returned from, with every register as
 * it was, so the boot goes on; more than a million of them is a storm and fatal.
 * Every other vector is an exception: the general registers are saved under the CPU's frame
 * and rxen_trap(frame) reports it and ends the domain; it never returns.
 *
 * Needs: the GDT's 64-bit code selector at 0x10 and a free 16-byte slot at 0x20 for the TSS
 * descriptor (rxen_gdt_tss, filled in here); called in long mode with a stack. */

    .set TRAP_CS, 0x10
    .set TSS_SEL, 0x20
    .set STRAY_LIMIT, 1000000

    .section .text.traps, "ax", @progbits
    .code64
    .globl rxen_traps_init
rxen_traps_init:
    /* The gates: offset 15:0, selector, IST 1, type 0x8e (present, DPL 0, 64-bit
     * interrupt gate), offset 31:16; offset 63:32 and the reserved dword stay 0 (.bss). */
    mov     $rxen_trap_stubs, %eax
    mov     $rxen_idt, %edi
    mov     $256, %ecx
1:  mov     %ax, (%rdi)
    movw    $TRAP_CS, 2(%rdi)
    movb    $1, 4(%rdi)
    movb    $0x8e, 5(%rdi)
    mov     %eax, %edx
    shr     $16, %edx
    mov     %dx, 6(%rdi)
    add     $16, %eax
    add     $16, %edi
    dec     %ecx
    jnz     1b
    /* The TSS: IST1 = the trap stack (offset 0x24), no I/O bitmap (base = limit + 1). */
    mov     $rxen_trap_stack_top, %eax
    mov     %rax, rxen_tss + 0x24
    movw    $104, rxen_tss + 0x66
    /* Its descriptor: limit 103, type 0x89 (present, available 64-bit TSS), the base. */
    mov     $rxen_tss, %eax
    movw    $103, rxen_gdt_tss
    mov     %ax, rxen_gdt_tss + 2
    shr     $16, %eax
    mov     %al, rxen_gdt_tss + 4
    movb    $0x89, rxen_gdt_tss + 5
    movb    $0, rxen_gdt_tss + 6
    mov     %ah, rxen_gdt_tss + 7
    movl    $0, rxen_gdt_tss + 8
    movl    $0, rxen_gdt_tss + 12
    mov     $TSS_SEL, %ax
    ltr     %ax
    lidt    rxen_idt_ptr
    ret

/* rxen_traps_off(): load an empty IDT, so what runs next (the kernel) starts as it would
 * from Xen or firmware: no handler of ours in memory the kernel is free to reuse. */
    .globl rxen_traps_off
rxen_traps_off:
    lidt    rxen_idt_null
    ret

    .balign 16
    .globl rxen_trap_stubs
rxen_trap_stubs:
    .set vec, 0
    .rept 256
    .balign 16
    .if vec == 8 || vec == 17 || vec == 21 || vec == 29 || vec == 30 || (vec >= 10 && vec <= 14)
    .else
    pushq   $0
    .endif
    pushq   $vec
    jmp     trap_common
    .set vec, vec + 1
    .endr

trap_common:
    /* (%rsp) vector, 8 error code, 16 RIP, 24 CS, 32 RFLAGS, 40 RSP, 48 SS */
    cmpq    $2, (%rsp)
    je      stray
    cmpq    $32, (%rsp)
    jae     stray
fatal:
    push    %rax
    push    %rbx
    push    %rcx
    push    %rdx
    push    %rsi
    push    %rdi
    push    %rbp
    push    %r8
    push    %r9
    push    %r10
    push    %r11
    push    %r12
    push    %r13
    push    %r14
    push    %r15
    cld
    mov     %rsp, %rdi                  /* &TrapFrame: r15 first (platform/traps.rs) */
    and     $-16, %rsp
    call    rxen_trap
2:  cli
    hlt
    jmp     2b

stray:
    lock incl rxen_stray_count
    cmpl    $STRAY_LIMIT, rxen_stray_count
    ja      fatal
    push    %rax
    mov     8(%rsp), %rax
    mov     %eax, rxen_stray_vector
    mov     24(%rsp), %rax
    mov     %rax, rxen_stray_rip
    pop     %rax
    add     $16, %rsp                   /* vector and error code */
    iretq

    .section .data.traps, "aw", @progbits
    .balign 8
rxen_idt_ptr:
    .word 256 * 16 - 1
    .quad rxen_idt
    .balign 8
rxen_idt_null:
    .word 0
    .quad 0

    .section .bss.traps, "aw", @nobits
    .balign 4096
rxen_idt:   .skip 256 * 16
    .balign 16
rxen_tss:   .skip 104
    .balign 16
rxen_trap_stack: .skip 32768            /* core::fmt for the report */
rxen_trap_stack_top:
