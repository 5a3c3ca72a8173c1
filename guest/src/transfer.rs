//! The transfer disk: how the host hands the run plan to a QEMU guest and gets the results
//! back, with no network and no guest file-system driver involved (gem5 uses m5 readfile and
//! writefile instead).
//!
//! Layout of the raw disk ([`TRANSFER_DISK_SIZE`] bytes): at offset 0 a header line
//! `SIMCTL-TRANSFER v1 in <len>\n` and the plan bytes; at [`OUTPUT_OFFSET`] a header line
//! `SIMCTL-TRANSFER v1 out <len>\n` and a tar archive of the results directory.

use std::fs::OpenOptions;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;

pub const TRANSFER_DISK_SIZE: u64 = 64 * 1024 * 1024;
pub const OUTPUT_OFFSET: u64 = 32 * 1024 * 1024;
const MAGIC: &str = "SIMCTL-TRANSFER v1";
const HEADER_MAX: usize = 64;

fn write_region(path: &Path, offset: u64, direction: &str, payload: &[u8]) -> io::Result<()> {
    let limit = if direction == "in" {
        OUTPUT_OFFSET
    } else {
        TRANSFER_DISK_SIZE - OUTPUT_OFFSET
    };
    let header = format!("{MAGIC} {direction} {}\n", payload.len());
    if (header.len() + payload.len()) as u64 > limit {
        return Err(io::Error::other(format!(
            "transfer payload of {} bytes does not fit the {limit}-byte {direction} region",
            payload.len()
        )));
    }
    let mut disk = OpenOptions::new().write(true).open(path)?;
    disk.seek(SeekFrom::Start(offset))?;
    disk.write_all(header.as_bytes())?;
    disk.write_all(payload)?;
    disk.sync_all()
}

fn read_region(path: &Path, offset: u64, direction: &str) -> io::Result<Option<Vec<u8>>> {
    let mut disk = std::fs::File::open(path)?;
    disk.seek(SeekFrom::Start(offset))?;
    let mut header = [0u8; HEADER_MAX];
    disk.read_exact(&mut header)?;
    let Some(end) = header.iter().position(|&b| b == b'\n') else {
        return Ok(None);
    };
    let line = String::from_utf8_lossy(&header[..end]);
    let Some(len) = line
        .strip_prefix(MAGIC)
        .and_then(|rest| rest.trim().strip_prefix(direction))
        .and_then(|rest| rest.trim().parse::<usize>().ok())
    else {
        return Ok(None);
    };
    disk.seek(SeekFrom::Start(offset + end as u64 + 1))?;
    let mut payload = vec![0u8; len];
    disk.read_exact(&mut payload)?;
    Ok(Some(payload))
}

/// Creates the disk file (sparse) with the plan in its input region (host side).
pub fn create_with_input(path: &Path, plan: &[u8]) -> io::Result<()> {
    let disk = std::fs::File::create(path)?;
    disk.set_len(TRANSFER_DISK_SIZE)?;
    drop(disk);
    write_region(path, 0, "in", plan)
}

/// The plan, if the disk carries one (guest side, from /dev/sdb).
pub fn read_input(path: &Path) -> io::Result<Option<Vec<u8>>> {
    read_region(path, 0, "in")
}

/// Stores the results archive in the output region (guest side).
pub fn write_output(path: &Path, tar: &[u8]) -> io::Result<()> {
    write_region(path, OUTPUT_OFFSET, "out", tar)
}

/// The results archive, if the guest wrote one (host side).
pub fn read_output(path: &Path) -> io::Result<Option<Vec<u8>>> {
    read_region(path, OUTPUT_OFFSET, "out")
}

/// A tar archive of the regular files directly in `dir`.
pub fn pack_dir(dir: &Path) -> io::Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|entry| entry.file_name());
    for entry in entries {
        if entry.file_type()?.is_file() {
            builder.append_path_with_name(entry.path(), entry.file_name())?;
        }
    }
    builder.into_inner()
}

/// Unpacks an archive made by [`pack_dir`] into `dest`.
pub fn unpack(tar_bytes: &[u8], dest: &Path) -> io::Result<()> {
    std::fs::create_dir_all(dest)?;
    tar::Archive::new(tar_bytes).unpack(dest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_in_results_out_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let disk = dir.path().join("transfer.img");
        create_with_input(&disk, b"[[step]]\nname = \"x\"\n").unwrap();
        assert_eq!(std::fs::metadata(&disk).unwrap().len(), TRANSFER_DISK_SIZE);
        assert_eq!(
            read_input(&disk).unwrap().unwrap(),
            b"[[step]]\nname = \"x\"\n"
        );
        assert_eq!(
            read_output(&disk).unwrap(),
            None,
            "nothing written back yet"
        );

        let results = dir.path().join("results");
        std::fs::create_dir(&results).unwrap();
        std::fs::write(results.join("results.csv"), "index,ok\n0,true\n").unwrap();
        write_output(&disk, &pack_dir(&results).unwrap()).unwrap();
        let back = dir.path().join("back");
        unpack(&read_output(&disk).unwrap().unwrap(), &back).unwrap();
        assert_eq!(
            std::fs::read_to_string(back.join("results.csv")).unwrap(),
            "index,ok\n0,true\n"
        );
    }

    #[test]
    fn oversized_plan_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let disk = dir.path().join("t.img");
        let big = vec![b'x'; OUTPUT_OFFSET as usize];
        assert!(create_with_input(&disk, &big).is_err());
    }
}
