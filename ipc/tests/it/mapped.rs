//! `MappedFile`: files used in place, and the huge-page advice on large ones.

use shmframe_ipc::MappedFile;

use super::harness::TempDir;

/// The `VmFlags` of the mapping that starts at `addr`, from `/proc/self/smaps`.
fn vm_flags(addr: usize) -> String {
    let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
    let mut inside = false;
    for line in smaps.lines() {
        if let Some((range, _)) = line.split_once(' ')
            && let Some((start, _)) = range.split_once('-')
            && let Ok(start) = usize::from_str_radix(start, 16)
        {
            inside = start == addr;
        } else if inside && let Some(flags) = line.strip_prefix("VmFlags:") {
            return flags.trim().to_string();
        }
    }
    panic!("no mapping starts at {addr:#x}");
}

#[test]
fn large_files_are_mapped_with_the_huge_page_advice() {
    let thp = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled");
    if thp.is_err() {
        eprintln!("skipped: this kernel has no transparent huge pages");
        return;
    }
    let tmp = TempDir::new("mapped");
    for (len, advised) in [(4 << 20, true), ((2 << 20) - 1, false)] {
        let p = tmp.path().join(format!("{len}.bin"));
        std::fs::write(&p, vec![7u8; len]).unwrap();
        let f = MappedFile::open(&p).unwrap();
        assert_eq!(f.bytes().len(), len);
        assert!(f.bytes().iter().all(|&b| b == 7));
        let flags = vm_flags(f.bytes().as_ptr() as usize);
        assert_eq!(
            flags.split_whitespace().any(|f| f == "hg"),
            advised,
            "{len}-byte file: VmFlags {flags}"
        );
    }
}
