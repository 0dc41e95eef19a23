//! Just enough ELF reading for RPATH work: the dynamic section's `DT_NEEDED` libraries and its
//! `DT_RPATH` / `DT_RUNPATH` strings with their file offsets, read with goblin's header,
//! program-header and dynamic-section parsers (not a full [`goblin::elf::Elf::parse`]).
//!
//! [`DynInfo::protected_offsets`] does the full parse when an edit is about to happen, to find
//! every other string in `.dynstr` (dynamic symbols, version needs and definitions) so that an
//! edit never clobbers a string the linker merged into the tail of an RPATH.

use goblin::container::Ctx;
use goblin::elf::dynamic::{Dynamic, DT_NEEDED, DT_RPATH, DT_RUNPATH, DT_SONAME};
use goblin::elf::{Elf, ProgramHeader};
use goblin::error::Error;

/// `DT_AUXILIARY` and `DT_FILTER` (string-valued; goblin does not name them).
const DT_AUXILIARY: u64 = 0x7fff_fffd;
const DT_FILTER: u64 = 0x7fff_ffff;

/// A `DT_RPATH` or `DT_RUNPATH` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SearchPath {
    /// `RPATH` or `RUNPATH`.
    pub kind: &'static str,
    /// The entry's offset into `.dynstr`.
    pub strtab_offset: usize,
    /// The string's offset in the file.
    pub file_offset: usize,
    /// The string, without its NUL.
    pub value: Vec<u8>,
}

/// What the dynamic section says, for a dynamically linked ELF file.
#[derive(Debug, Clone)]
pub(crate) struct DynInfo {
    /// `e_machine` of the file.
    pub machine: u16,
    /// `DT_NEEDED` entries, in order.
    pub needed: Vec<Vec<u8>>,
    /// `DT_RPATH` and `DT_RUNPATH` entries, in order.
    pub search_paths: Vec<SearchPath>,
    /// `.dynstr` offsets referenced by other string-valued dynamic entries.
    pub other_strings: Vec<usize>,
}

/// Reads the dynamic section of `bytes` (a whole ELF file). `Ok(None)` for a file without a
/// dynamic section (statically linked, relocatable objects, core files).
pub(crate) fn dyn_info(bytes: &[u8]) -> Result<Option<DynInfo>, Error> {
    let header = Elf::parse_header(bytes)?;
    let ctx = Ctx::new(header.container()?, header.endianness()?);
    let phdrs = ProgramHeader::parse(bytes, header.e_phoff as usize, header.e_phnum as usize, ctx)?;
    let Some(dynamic) = Dynamic::parse(bytes, &phdrs, ctx)? else {
        return Ok(None);
    };
    let strtab = dynamic.info.strtab;
    let strsz = dynamic.info.strsz;
    if strtab == 0 || strtab >= bytes.len() {
        return Err(Error::Malformed(format!(
            "the dynamic string table at {strtab:#x} is outside the file"
        )));
    }
    let table = &bytes[strtab..bytes.len().min(strtab.saturating_add(strsz))];
    let string_at = |offset: u64| -> Result<&[u8], Error> {
        let start = usize::try_from(offset)
            .ok()
            .filter(|start| *start < table.len())
            .ok_or_else(|| {
                Error::Malformed(format!(
                    "dynamic string offset {offset:#x} is outside the string table"
                ))
            })?;
        let len = memchr::memchr(0, &table[start..]).ok_or_else(|| {
            Error::Malformed(format!(
                "dynamic string at {offset:#x} is not NUL-terminated"
            ))
        })?;
        Ok(&table[start..start + len])
    };
    let mut info = DynInfo {
        machine: header.e_machine,
        needed: Vec::new(),
        search_paths: Vec::new(),
        other_strings: Vec::new(),
    };
    for entry in &dynamic.dyns {
        match entry.d_tag {
            DT_NEEDED => info.needed.push(string_at(entry.d_val)?.to_vec()),
            DT_RPATH | DT_RUNPATH => {
                let value = string_at(entry.d_val)?.to_vec();
                let strtab_offset = entry.d_val as usize;
                info.search_paths.push(SearchPath {
                    kind: if entry.d_tag == DT_RPATH {
                        "RPATH"
                    } else {
                        "RUNPATH"
                    },
                    strtab_offset,
                    file_offset: strtab + strtab_offset,
                    value,
                });
            }
            DT_SONAME | DT_AUXILIARY | DT_FILTER => info.other_strings.push(entry.d_val as usize),
            _ => {}
        }
    }
    for entry in &dynamic.dyns {
        if entry.d_tag == DT_NEEDED {
            info.other_strings.push(entry.d_val as usize);
        }
    }
    Ok(Some(info))
}

/// Every `.dynstr` offset used by something other than the RPATH entries themselves: other
/// dynamic entries, dynamic symbol names, version needs (`vn_file`, `vna_name`) and version
/// definitions (`vda_name`). Needs a full parse, so it is only called before an edit.
pub(crate) fn protected_offsets(bytes: &[u8], info: &DynInfo) -> Result<Vec<usize>, Error> {
    let elf = Elf::parse(bytes)?;
    let mut offsets = info.other_strings.clone();
    offsets.extend(elf.dynsyms.iter().map(|sym| sym.st_name));
    if let Some(verneed) = &elf.verneed {
        for need in verneed.iter() {
            offsets.push(need.vn_file);
            offsets.extend(need.iter().map(|aux| aux.vna_name));
        }
    }
    if let Some(verdef) = &elf.verdef {
        for def in verdef.iter() {
            offsets.extend(def.iter().map(|aux| aux.vda_name));
        }
    }
    Ok(offsets)
}

/// `e_machine` of the ELF file at `head` (its first bytes), or `None` if it is not ELF.
pub(crate) fn machine_of(head: &[u8]) -> Option<u16> {
    if head.len() < 20 || head[..4] != *b"\x7fELF" {
        return None;
    }
    let bytes = [head[18], head[19]];
    Some(match head[5] {
        2 => u16::from_be_bytes(bytes),
        _ => u16::from_le_bytes(bytes),
    })
}

/// The program interpreter (`PT_INTERP`) of the ELF file `bytes`, without its NUL; `None` when it
/// has none.
pub(crate) fn interpreter(bytes: &[u8]) -> Result<Option<Vec<u8>>, Error> {
    let header = Elf::parse_header(bytes)?;
    let ctx = Ctx::new(header.container()?, header.endianness()?);
    let phdrs = ProgramHeader::parse(bytes, header.e_phoff as usize, header.e_phnum as usize, ctx)?;
    let Some(interp) = phdrs
        .iter()
        .find(|phdr| phdr.p_type == goblin::elf::program_header::PT_INTERP)
    else {
        return Ok(None);
    };
    let start = usize::try_from(interp.p_offset).unwrap_or(usize::MAX);
    let end =
        usize::try_from(interp.p_offset.saturating_add(interp.p_filesz)).unwrap_or(usize::MAX);
    let Some(raw) = bytes.get(start..end) else {
        return Err(Error::Malformed(format!(
            "the interpreter at {start:#x} is outside the file"
        )));
    };
    let len = memchr::memchr(0, raw).unwrap_or(raw.len());
    Ok(Some(raw[..len].to_vec()))
}

/// Checks that every segment and section of the ELF file `bytes` lies inside it (the header
/// tables included), so that a patcher that trusts those sizes allocates no more than the
/// file's size. A hostile file may claim sections of exabytes.
pub(crate) fn check_bounds(bytes: &[u8]) -> Result<(), Error> {
    use goblin::elf::section_header::{SectionHeader, SHT_NOBITS};
    let header = Elf::parse_header(bytes)?;
    let ctx = Ctx::new(header.container()?, header.endianness()?);
    let len = bytes.len() as u64;
    let inside = |what: &str, offset: u64, size: u64| {
        if offset.checked_add(size).is_some_and(|end| end <= len) {
            Ok(())
        } else {
            Err(Error::Malformed(format!(
                "{what} at {offset:#x} of {size:#x} bytes extends past the end of the file ({len:#x} bytes)"
            )))
        }
    };
    let phdrs = ProgramHeader::parse(bytes, header.e_phoff as usize, header.e_phnum as usize, ctx)?;
    for phdr in &phdrs {
        inside("a segment", phdr.p_offset, phdr.p_filesz)?;
    }
    let shdrs = SectionHeader::parse(bytes, header.e_shoff as usize, header.e_shnum as usize, ctx)?;
    for shdr in &shdrs {
        if shdr.sh_type != SHT_NOBITS {
            inside("a section", shdr.sh_offset, shdr.sh_size)?;
        }
        // A string table holds at least its leading NUL; elb assumes so (found by fuzzing).
        if shdr.sh_type == goblin::elf::section_header::SHT_STRTAB && shdr.sh_size == 0 {
            return Err(Error::Malformed(format!(
                "the string table at {:#x} is empty",
                shdr.sh_offset
            )));
        }
    }
    // elb edits through the section headers, and names sections from the section-name table.
    let names = shdrs
        .get(usize::from(header.e_shstrndx))
        .filter(|_| header.e_shstrndx != 0);
    if names.is_none_or(|names| names.sh_size == 0) {
        return Err(Error::Malformed(
            "there is no section-name table (section headers stripped?)".to_owned(),
        ));
    }
    Ok(())
}
