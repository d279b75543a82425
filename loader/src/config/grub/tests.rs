// SPDX-License-Identifier: MIT OR Apache-2.0
//! Host tests of the GRUB interpreter's semantics.

use alloc::string::{String, ToString};

use super::*;
use crate::config::configfs::MemFs;
use crate::config::menu::{Env, select_default};

const DEV: &str = "hd0,gpt2";

fn fs() -> MemFs {
    let mut fs = MemFs::new(DEV);
    fs.add_device(DEV, "1111-2222", "root");
    fs.add_device("hd0,gpt1", "AAAA-BBBB", "boot");
    fs
}

fn run_fs(fs: &mut MemFs, text: &str) -> Menu {
    evaluate(text, "(hd0,gpt2)/boot/grub/grub.cfg", fs, &initial_env(DEV, "/boot/grub/grub.cfg"), &Options::default())
        .unwrap()
}

fn run(text: &str) -> Menu {
    run_fs(&mut fs(), text)
}

fn err(text: &str) -> String {
    evaluate(text, "t.cfg", &mut fs(), &Env::new(), &Options::default()).unwrap_err().to_string()
}

fn chosen(m: &Menu) -> &crate::config::menu::Entry {
    &m.entries[select_default(m, &Env::new()).unwrap().entry]
}

#[test]
fn words_quotes_and_splitting() {
    let m = run(concat!(
        "set a='x  y'\nset e=\n",
        "menuentry \"T $a\" { linux /k 1$a\"2\"  \"$a\" '$a' \\$a $e \"\" x\\ y ${e}z }\n"
    ));
    let e = &m.entries[0];
    assert_eq!(e.title, "T x  y");
    assert_eq!(e.cmdline, "1x y2 \"x  y\" $a $a  \"x y\" z");
}

#[test]
fn if_elif_else_test_and_status() {
    let mut f = fs();
    f.add_file(DEV, "/boot/vmlinuz", "k");
    let m = run_fs(
        &mut f,
        concat!(
            "if [ -z \"$nothing\" -a 3 -gt 2 ]; then a=1; fi\n",
            "if false; then b=1; elif [ x = y ]; then b=2; else b=3; fi\n",
            "test -f /boot/vmlinuz; s=$?\n",
            "if ! test -d /boot; then c=no; else c=yes; fi\n",
            "true && t1=y || t1=n; false && t2=y || t2=n\n",
            "menuentry \"$a $b $s $c $t1 $t2\" { linux /boot/vmlinuz }\n"
        ),
    );
    assert_eq!(m.entries[0].title, "1 3 0 yes y n");
}

#[test]
fn loops_functions_break_return() {
    let m = run(concat!(
        "function f { if [ \"$1\" = stop ]; then return 3; fi; r=\"$r$1$#\"; }\n",
        "for i in a b stop c; do f $i; if [ $? = 3 ]; then break; fi; done\n",
        "l=\nwhile [ \"$l\" != xxxxx ]; do l=\"${l}x\"; if [ \"$l\" = xxx ]; then continue; fi; m=\"$m$l,\"; done\n",
        "until true; do never=1; done\n",
        "menuentry \"$r/$m/$never\" { linux /k }\n"
    ));
    assert_eq!(m.entries[0].title, "a1b1/x,xx,xxxx,xxxxx,/");
}

#[test]
fn debian_style_entry_with_search_and_submenu() {
    let mut f = fs();
    f.add_file(
        DEV,
        "/boot/grub/grubenv",
        crate::config::grubenv::create(
            1024,
            &[("saved_entry".into(), "gnulinux-advanced-1111-2222>gnulinux-6.1.0-12-advanced-1111-2222".into())],
        )
        .unwrap(),
    );
    let m = run_fs(
        &mut f,
        concat!(
            "if [ -s $prefix/grubenv ]; then\n  set have_grubenv=true\n  load_env\nfi\n",
            "set default=\"${saved_entry}\"\n",
            "if [ x\"${feature_menuentry_id}\" = xy ]; then\n  menuentry_id_option=\"--id\"\nelse\n  menuentry_id_option=\"\"\nfi\nexport menuentry_id_option\n",
            "set timeout=5\n",
            "menuentry 'Debian GNU/Linux' --class debian $menuentry_id_option 'gnulinux-simple-1111-2222' {\n",
            "\tset root='hd0,gpt9'\n\tsearch --no-floppy --fs-uuid --set=root --hint-bios=hd0,gpt2 --hint-efi=hd0,gpt2 1111-2222\n",
            "\tlinux\t/boot/vmlinuz-6.1.0-13-amd64 root=UUID=1111-2222 ro  quiet\n\tinitrd\t/boot/initrd.img-6.1.0-13-amd64\n}\n",
            "submenu 'Advanced options for Debian GNU/Linux' $menuentry_id_option 'gnulinux-advanced-1111-2222' {\n",
            "\tmenuentry 'Debian GNU/Linux, with Linux 6.1.0-13-amd64' $menuentry_id_option 'gnulinux-6.1.0-13-advanced-1111-2222' {\n\t\tlinux /boot/vmlinuz-6.1.0-13-amd64 ro $have_grubenv\n\t}\n",
            "\tmenuentry 'Debian GNU/Linux, with Linux 6.1.0-12-amd64' $menuentry_id_option 'gnulinux-6.1.0-12-advanced-1111-2222' {\n\t\tsearch --fs-uuid --set=root AAAA-BBBB\n\t\tlinux /vmlinuz-6.1.0-12-amd64 root=UUID=1111-2222 ro\n\t\tsaved_entry=${chosen}\n\t\tsave_env saved_entry\n\t}\n}\n"
        ),
    );
    assert_eq!((m.entries.len(), m.submenus.len(), m.timeout), (3, 1, Some(5)));
    assert_eq!(m.entries[0].kernel.as_ref().unwrap().to_string(), "(hd0,gpt2)/boot/vmlinuz-6.1.0-13-amd64");
    assert_eq!(m.entries[0].cmdline, "root=UUID=1111-2222 ro quiet");
    // have_grubenv is not exported: GRUB's submenu does not see it.
    assert_eq!(m.entries[1].cmdline, "ro");
    let e = chosen(&m);
    assert_eq!(e.id, "gnulinux-6.1.0-12-advanced-1111-2222");
    assert_eq!(e.kernel.as_ref().unwrap().to_string(), "(hd0,gpt1)/vmlinuz-6.1.0-12-amd64");
    assert_eq!(e.submenu, ["Advanced options for Debian GNU/Linux"]);
    let w = &e.env_writes[0];
    assert_eq!(
        w.vars,
        [(
            "saved_entry".to_string(),
            Some("gnulinux-advanced-1111-2222>gnulinux-6.1.0-12-advanced-1111-2222".to_string())
        )]
    );
    assert_eq!(w.path, "/boot/grub/grubenv");
}

#[test]
fn unknown_and_quiet_commands() {
    let m = run(
        "loadfont unicode\nterminal_output gfxterm\nfrobnicate 1\nmenuentry x {\n recordfail\n gfxmode keep\n wibble\n wibble\n linux /k\n}\n",
    );
    assert_eq!(m.messages.len(), 3, "{:?}", m.messages);
    assert!(m.messages[0].contains("grub.cfg:3: unknown command `frobnicate`"), "{:?}", m.messages);
    assert!(m.messages[1].contains(":7: unknown command `wibble`"));
    assert_eq!(m.entries[0].messages.len(), 2);
    assert!(m.entries[0].is_bootable());
}

#[test]
fn syntax_errors_skip_a_statement() {
    let m = run("menuentry a { linux /a }\necho | x\nmenuentry b { linux /b }\n");
    assert_eq!(m.entries.len(), 2);
    assert!(m.messages[0].contains(":2: syntax error"), "{:?}", m.messages);
}

#[test]
fn source_configfile_and_unsupported() {
    let mut f = fs();
    f.add_file(DEV, "/boot/grub/custom.cfg", "menuentry custom { linux /c }\n");
    f.add_file("hd0,gpt1", "/grub2/grub.cfg", "menuentry real { linux /r $x$y }\n");
    let m = run_fs(
        &mut f,
        "source ${config_directory}/custom.cfg\nmenuentry xen { multiboot2 /xen.gz; module2 /vmlinuz }\n",
    );
    assert_eq!(m.entries.len(), 2);
    assert_eq!(m.entries[1].unsupported.as_deref(), Some("multiboot2"));
    // configfile: a new context with the exported variables; its menu replaces ours.
    let m = run_fs(
        &mut f,
        "menuentry old { linux /o }\nset x=1; y=2; export y\nsearch --no-floppy --fs-uuid --set=dev AAAA-BBBB\nset prefix=($dev)/grub2\nconfigfile $prefix/grub.cfg\nmenuentry never { linux /n }\n",
    );
    assert_eq!(m.entries.len(), 1);
    assert_eq!(m.entries[0].cmdline, "2");
    assert_eq!(m.file, "(hd0,gpt1)/grub2/grub.cfg");
}

#[test]
fn hostile_scripts_stop_with_a_place() {
    assert!(
        err("while true; do\n  x=1\ndone\n").starts_with("t.cfg:2: stopped after 100000 steps"),
        "{}",
        err("while true; do x=1; done")
    );
    let e = err("function f { f; }\nf\n");
    assert!(e.contains("t.cfg:1: commands nested deeper than 64"), "{e}");
    let e = err("x=ab\nwhile true; do x=\"$x$x\"; done\n");
    assert!(e.contains("t.cfg:2:") && e.contains("65536"), "{e}");
    let e = err("i=\nwhile true; do i=\"${i}x\"; menuentry $i { linux /k; }; done\n");
    assert!(e.contains("more than 1024 menu entries"), "{e}");
}

#[test]
fn self_sourcing_and_submenu_recursion_are_bounded() {
    let mut f = fs();
    f.add_file(DEV, "/s.cfg", "source /s.cfg\n");
    f.add_file(DEV, "/m.cfg", "submenu m { source /m.cfg }\n");
    let opts = Options::default();
    let e = evaluate("source /s.cfg\n", "t.cfg", &mut f, &Env::new(), &opts).unwrap_err().to_string();
    assert!(e.contains("/s.cfg:1: commands nested deeper than 64"), "{e}");
    let e = evaluate("source /m.cfg\n", "t.cfg", &mut f, &Env::new(), &opts).unwrap_err().to_string();
    assert!(e.contains("submenus nested deeper than 16"), "{e}");
}

#[test]
fn blscfg_entries() {
    let mut f = fs();
    f.add_file("hd0,gpt1", "/loader/entries/abc-6.8.5-301.fc40.x86_64.conf", "title Fedora Linux (6.8.5-301.fc40.x86_64) 40\nversion 6.8.5-301.fc40.x86_64\nlinux /vmlinuz-6.8.5-301.fc40.x86_64\ninitrd /initramfs-6.8.5-301.fc40.x86_64.img\noptions $kernelopts rhgb quiet\ngrub_class fedora\n");
    f.add_file("hd0,gpt1", "/loader/entries/abc-6.10.3-200.fc40.x86_64.conf", "title Fedora Linux (6.10.3-200.fc40.x86_64) 40\nlinux /vmlinuz-6.10.3-200.fc40.x86_64\ninitrd /initramfs-6.10.3-200.fc40.x86_64.img\noptions root=UUID=1111-2222 ro\n");
    f.add_file(
        "hd0,gpt1",
        "/grub2/grubenv",
        crate::config::grubenv::create(
            1024,
            &[
                ("kernelopts".into(), "root=UUID=1111-2222 ro".into()),
                ("saved_entry".into(), "abc-6.8.5-301.fc40.x86_64".into()),
            ],
        )
        .unwrap(),
    );
    let m = run_fs(
        &mut f,
        "search --no-floppy --fs-uuid --set=root AAAA-BBBB\nload_env -f ($root)/grub2/grubenv\nset default=\"${saved_entry}\"\ninsmod blscfg\nblscfg\n",
    );
    assert_eq!(m.entries.len(), 2);
    assert_eq!(m.entries[0].id, "abc-6.10.3-200.fc40.x86_64");
    let e = chosen(&m);
    assert_eq!(e.title, "Fedora Linux (6.8.5-301.fc40.x86_64) 40");
    assert_eq!(e.kernel.as_ref().unwrap().to_string(), "(hd0,gpt1)/vmlinuz-6.8.5-301.fc40.x86_64");
    assert_eq!(e.cmdline, "root=UUID=1111-2222 ro rhgb quiet");
    assert_eq!(e.initrds[0].spec, "(hd0,gpt1)/initramfs-6.8.5-301.fc40.x86_64.img");
    assert_eq!(e.classes, ["fedora"]);
}

#[test]
fn top_level_boot() {
    let m = run(
        "menuentry a { linux /a }\nlinux /vmlinuz root=/dev/xvda1\ninitrd /initrd.img\nboot\nmenuentry b { linux /b }\n",
    );
    assert_eq!(m.entries.len(), 1);
    assert_eq!(m.entries[0].cmdline, "root=/dev/xvda1");
    assert_eq!(m.entries[0].initrds.len(), 1);
}

#[test]
fn menuentry_options() {
    let m = run(
        "menuentry 'T' 'extra arg' --class a --class=b --users alice --hotkey f5 { echo $2; linux /k \"$2\" }\nmenuentry U --unrestricted --id=u { linux /k }\nsuperusers=root\n",
    );
    let (a, b) = (&m.entries[0], &m.entries[1]);
    assert_eq!((a.classes.len(), a.users.as_deref(), a.hotkey.as_deref()), (2, Some("alice"), Some("f5")));
    assert_eq!(a.cmdline, "\"extra arg\"");
    assert_eq!((b.users.as_deref(), b.id.as_str()), (None, "u"));
    assert_eq!(m.superusers.as_deref(), Some("root"));
}

#[test]
fn efi_stubs_chain_to_the_real_config() {
    let mut f = fs();
    f.add_file(DEV, "/boot/grub/grub.cfg", "menuentry debian { linux /boot/vmlinuz root=UUID=1111-2222 }\n");
    f.add_file("hd0,gpt1", "/grub2/grub.cfg", "menuentry fedora { linux ($root)/vmlinuz $x }\n");
    let stub = "search.fs_uuid 1111-2222 root hd0,gpt2\nset prefix=($root)'/boot/grub'\nconfigfile $prefix/grub.cfg\n";
    let m = evaluate(
        stub,
        "(hd0,gpt1)/EFI/debian/grub.cfg",
        &mut f,
        &initial_env("hd0,gpt1", "/EFI/debian/grub.cfg"),
        &Options::default(),
    )
    .unwrap();
    assert_eq!(m.entries[0].kernel.as_ref().unwrap().to_string(), "(hd0,gpt2)/boot/vmlinuz");
    assert_eq!(m.file, "(hd0,gpt2)/boot/grub/grub.cfg");
    let stub = "search --no-floppy --root-dev-only --fs-uuid --set=dev AAAA-BBBB\nset prefix=($dev)/grub2\nexport $prefix\nx=1\nconfigfile $prefix/grub.cfg\n";
    let m = evaluate(
        stub,
        "(hd0,gpt1)/EFI/fedora/grub.cfg",
        &mut f,
        &initial_env("hd0,gpt1", "/EFI/fedora/grub.cfg"),
        &Options::default(),
    )
    .unwrap();
    assert_eq!(m.entries[0].kernel.as_ref().unwrap().to_string(), "(hd0,gpt1)/vmlinuz");
    // Upstream GRUB carries only exported variables into the configfile's context.
    assert_eq!(m.entries[0].cmdline, "");
    let opts = Options { dialect: Some(Dialect::Rhboot), ..Options::default() };
    let m = evaluate(
        stub,
        "(hd0,gpt1)/EFI/fedora/grub.cfg",
        &mut f,
        &initial_env("hd0,gpt1", "/EFI/fedora/grub.cfg"),
        &opts,
    )
    .unwrap();
    assert_eq!(m.entries[0].cmdline, "1");
}

#[test]
fn timeouts_and_fallback() {
    let m = run("set timeout=-1\nset fallback=\"1 2\"\nmenuentry a { linux /a }\nmenuentry b { linux /b }\n");
    assert_eq!((m.timeout, m.fallback.len()), (None, 2));
    assert_eq!(crate::config::menu::fallback_entries(&m), [1]);
    assert_eq!(run("timeout=010\n").timeout, Some(8));
}

/// What keeps a script within the loader's 8 MiB heap (before the budgets the first three
/// took 11 to 177 MiB on the host, and the loader panicked in the guest; the environment
/// copies a few MiB).
#[test]
fn heap_budgets_stop_amplifying_scripts() {
    let big = "y".repeat(60_000);
    // A script of more tokens than are parsed: refused before its AST is made.
    let e = err(&"menuentry e { linux /v }\n".repeat(5000));
    assert!(e.contains("more than 16384 words and symbols in the configuration"), "{e}");
    // Titles made of a large variable: the menu's strings are counted.
    let mut s = format!("set x={big}\n");
    for i in 0..1000 {
        s.push_str(&format!("menuentry \"{i}$x\" {{ linux /v }}\n"));
    }
    let e = err(&s);
    assert!(e.contains("menu entries larger than 2097152 bytes in all"), "{e}");
    // A function passing large arguments down its recursion.
    let e = err(&format!("set x={big}\nfunction f {{\n  f $x $x $x $x\n}}\nf\n"));
    assert!(
        e.starts_with("t.cfg:3: variables and arguments of the calls, submenus and configfiles in progress"),
        "{e}"
    );
    assert!(e.ends_with("over the 524288-byte limit"), "{e}");
    // Nested submenus each copying a large exported environment.
    let mut s = String::new();
    for i in 0..4 {
        s.push_str(&format!("set v{i}={big}\nexport v{i}\n"));
    }
    s.push_str("submenu a { submenu b { submenu c { menuentry z { linux /v } } } }\n");
    assert!(err(&s).contains("in progress would hold"), "{}", err(&s));
    // configfile recursion with a large exported variable.
    let mut f = fs();
    f.add_file(DEV, "/c.cfg", "configfile /c.cfg\n");
    let text = format!("set x={big}\nexport x\nconfigfile /c.cfg\n");
    let e = evaluate(&text, "t.cfg", &mut f, &Env::new(), &Options::default()).unwrap_err().to_string();
    assert!(e.contains("/c.cfg:1: variables and arguments"), "{e}");
    // A large file sourcing itself: every level's text is held while it runs.
    let mut f = fs();
    f.add_file(DEV, "/s.cfg", format!("#{}\nsource /s.cfg\n", "c".repeat(600_000)));
    let e = evaluate("source /s.cfg\n", "t.cfg", &mut f, &Env::new(), &Options::default()).unwrap_err().to_string();
    assert_eq!(
        e,
        "/s.cfg:2: the configuration texts running at once would be 1200046 bytes, over the 1048576-byte limit"
    );
    // Messages quoting a large word are cut.
    let m = run(&format!("set x={big}\nmenuentry e {{ linux /v; $x }}\n"));
    let msg = &m.entries[0].messages[0];
    assert!(msg.len() < 400 && msg.ends_with("..."), "{msg}");
}

#[test]
fn parse_limited_counts_tokens() {
    use super::parser::{parse, parse_limited};
    let text = "menuentry a { linux /v }\necho b\n";
    let (cmds, errors, n) = parse_limited(text, 100).unwrap();
    assert_eq!((cmds, errors), parse(text));
    assert_eq!(n, 10);
    assert_eq!(parse_limited(text, 10).map(|r| r.2), Ok(10));
    assert_eq!(parse_limited(text, 9).map(|r| r.2), Err(2));
}
