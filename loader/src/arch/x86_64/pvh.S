/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/* PVH entry for pvh-boot (AT&T syntax, assembled by rustc via global_asm!).
 *
 * PVH ABI (xen docs/misc/pvh.pandoc): 32-bit protected mode, paging off, flat CS/DS/ES/SS,
 * %ebx = physical address of struct hvm_start_info, interrupts off, no stack, no GDT/IDT
 * we may rely on. We build an identity map of 0..4 GiB with 2 MiB pages, enter long mode,
 * enable SSE (the host target's precompiled core uses it), and call rxen_pvh_main(%ebx).
 *
 * The GDT is laid out for the Linux boot protocol too (Documentation/arch/x86/boot.rst):
 * __BOOT_CS = 0x10 and __BOOT_DS = 0x18, so the 64-bit kernel entry can run on it as is.
 */

    .section .note.Xen, "a", @note
    .balign 4
    .long 4                     /* n_namesz = strlen("Xen") + 1 */
    .long 8                     /* n_descsz: QEMU reads a 64-bit value from an ELF64 note; Xen reads 32 bits */
    .long 18                    /* XEN_ELFNOTE_PHYS32_ENTRY (xen/include/public/elfnote.h) */
    .asciz "Xen"
    .balign 4
    .quad pvh_start32
    .balign 4

    .section .text.entry32, "ax", @progbits
    .code32
    .globl pvh_start32
pvh_start32:
    cli
    cld

    /* zero .bss: page tables and the stack live there; %ebx (start info) is preserved */
    mov     $__bss_start, %edi
    mov     $__bss_end, %ecx
    sub     %edi, %ecx
    shr     $2, %ecx
    xor     %eax, %eax
    rep stosl

    /* PML4[0] -> PDPT */
    mov     $boot_pdpt, %eax
    or      $0x3, %eax                  /* Present | Writable */
    mov     %eax, boot_pml4
    /* PDPT[0..3] -> PD0..PD3 */
    mov     $boot_pd, %eax
    or      $0x3, %eax
    mov     $boot_pdpt, %edi
    mov     $4, %ecx
1:  mov     %eax, (%edi)
    add     $0x1000, %eax
    add     $8, %edi
    loop    1b
    /* 2048 x 2 MiB pages: identity map of 0..4 GiB (RAM, LAPIC, virtio-mmio, PCI holes) */
    mov     $boot_pd, %edi
    mov     $0x83, %eax                 /* Present | Writable | PS (2 MiB page) */
    xor     %edx, %edx                  /* high dword: physical bits 32+ (0) */
    mov     $2048, %ecx
2:  mov     %eax, (%edi)
    mov     %edx, 4(%edi)
    add     $0x200000, %eax
    add     $8, %edi
    loop    2b

    mov     $boot_pml4, %eax
    mov     %eax, %cr3
    mov     %cr4, %eax
    or      $0x620, %eax                /* CR4.PAE (bit 5) | OSFXSR (bit 9) | OSXMMEXCPT (bit 10) */
    mov     %eax, %cr4
    mov     $0xC0000080, %ecx           /* IA32_EFER */
    rdmsr
    or      $0x100, %eax                /* EFER.LME (bit 8) */
    wrmsr
    mov     %cr0, %eax
    and     $0x9FFFFFF3, %eax           /* clear CD (30), NW (29): caches on; EM (2), TS (3): SSE usable */
    or      $0x80000023, %eax           /* PG (31) | NE (5) | MP (1) | PE (0) */
    mov     %eax, %cr0

    lgdt    boot_gdt_ptr
    ljmp    $0x10, $long_mode_entry     /* __BOOT_CS: 64-bit code */

    .code64
long_mode_entry:
    mov     $0x18, %eax                 /* __BOOT_DS */
    mov     %eax, %ds
    mov     %eax, %es
    mov     %eax, %ss
    xor     %eax, %eax
    mov     %eax, %fs
    mov     %eax, %gs
    mov     $boot_stack_top, %esp       /* identity mapped, < 4 GiB */
    xor     %ebp, %ebp
    call    rxen_traps_init             /* IDT and TSS before any Rust runs (traps.S) */
    mov     %ebx, %edi                  /* arg0: hvm_start_info physical address */
    call    rxen_pvh_main
3:  cli
    hlt
    jmp     3b

/* rxen_enter32(entry: u32 (edi), ebx: u32 (esi), esi: u32 (edx), eax: u32 (ecx)) -> !
 * Leave long mode and jump to a 32-bit protected-mode entry with paging off, flat
 * segments, %ebx, %esi and %eax as given, and %ecx/%edx/%edi/%ebp zero: the register
 * state the PVH ABI (ebx = hvm_start_info), Linux's 32-bit boot protocol (esi =
 * boot_params; ebp, edi, ebx zero) and multiboot (eax = 0x2BADB002, ebx = info) ask for. Runs from identity-mapped memory below
 * 4 GiB, so turning paging off does not move the instruction stream. */
    .section .text.enter32, "ax", @progbits
    .code64
    .globl rxen_enter32
rxen_enter32:
    cli
    mov     %edi, enter32_target
    mov     %ecx, enter32_eax
    mov     %esi, %ebx
    mov     %edx, %esi
    pushq   $0x10                       /* __BOOT_CS in gdt32: 32-bit code */
    lea     enter32_compat(%rip), %rax
    pushq   %rax
    lgdt    gdt32_ptr
    lretq                               /* far return into 32-bit compatibility mode */
    .code32
enter32_compat:
    mov     $0x18, %eax                 /* __BOOT_DS: flat 32-bit data */
    mov     %eax, %ds
    mov     %eax, %es
    mov     %eax, %ss
    mov     %eax, %fs
    mov     %eax, %gs
    mov     %cr0, %eax
    and     $0x7FFFFFFF, %eax           /* CR0.PG off: leaves long mode (EFER.LMA clears) */
    mov     %eax, %cr0
    mov     $0xC0000080, %ecx           /* IA32_EFER */
    rdmsr
    and     $0xFFFFFEFF, %eax           /* EFER.LME off */
    wrmsr
    xor     %eax, %eax
    mov     %eax, %cr4                  /* PVH ABI: CR4 = 0 */
    mov     %eax, %cr3
    xor     %ecx, %ecx
    xor     %edx, %edx
    xor     %edi, %edi
    xor     %ebp, %ebp
    mov     enter32_eax, %eax
    jmp     *enter32_target

    .section .data.boot_gdt, "aw", @progbits
    .balign 16
boot_gdt:
    .quad 0                             /* 0x00: null */
    .quad 0x00CF9A000000FFFF            /* 0x08: 32-bit code, flat 4 GiB (unused) */
    .quad 0x00AF9A000000FFFF            /* 0x10: __BOOT_CS, 64-bit code (L=1) */
    .quad 0x00CF92000000FFFF            /* 0x18: __BOOT_DS, flat 4 GiB read/write data */
    .globl rxen_gdt_tss
rxen_gdt_tss:
    .quad 0, 0                          /* 0x20: the TSS (traps.S fills it in) */
boot_gdt_end:
    .balign 8
boot_gdt_ptr:
    .word boot_gdt_end - boot_gdt - 1
    .quad boot_gdt                      /* 10-byte form; 32-bit lgdt reads the low 4 bytes */

    .balign 16
gdt32:
    .quad 0                             /* 0x00: null */
    .quad 0                             /* 0x08: unused */
    .quad 0x00CF9A000000FFFF            /* 0x10: __BOOT_CS, 32-bit code, flat 4 GiB */
    .quad 0x00CF92000000FFFF            /* 0x18: __BOOT_DS, flat 4 GiB read/write data */
gdt32_end:
    .balign 8
gdt32_ptr:
    .word gdt32_end - gdt32 - 1
    .quad gdt32
    .balign 4
enter32_target:
    .long 0
enter32_eax:
    .long 0

    .section .bss.boot_pt, "aw", @nobits
    .balign 4096
boot_pml4:  .skip 4096
boot_pdpt:  .skip 4096
boot_pd:    .skip 4096 * 4
    .balign 16
boot_stack: .skip 131072               /* 128 KiB: core::fmt and sha2 are the deep users */
boot_stack_top:
