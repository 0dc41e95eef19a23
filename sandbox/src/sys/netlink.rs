//! The one rtnetlink exchange the sandbox needs: "set interface N up" and its acknowledgement,
//! as plain bytes, so that bringing `lo` up needs neither `ioctl(2)` (unsafe in Rust) nor a
//! netlink crate.
//!
//! # Format
//!
//! The request is a `struct nlmsghdr` (16 bytes: length, type `RTM_NEWLINK`, flags
//! `NLM_F_REQUEST | NLM_F_ACK`, sequence, port 0) followed by a `struct ifinfomsg` (16 bytes:
//! family `AF_UNSPEC`, padding, type 0, the interface index, flags `IFF_UP`, change mask
//! `IFF_UP`), all in native byte order
//! ([rtnetlink(7)](https://man7.org/linux/man-pages/man7/rtnetlink.7.html)). The kernel
//! answers with an `NLMSG_ERROR` message whose first payload field is 0 on success or a
//! negated errno ([netlink(7)](https://man7.org/linux/man-pages/man7/netlink.7.html)).

use std::io;

use nix::libc;

const HEADER_LEN: usize = 16;
const IFINFO_LEN: usize = 16;

/// The request that sets interface `index` up, with sequence number `seq`.
pub(crate) fn link_up_request(index: u32, seq: u32) -> Vec<u8> {
    let mut message = Vec::with_capacity(HEADER_LEN + IFINFO_LEN);
    // struct nlmsghdr
    message.extend(((HEADER_LEN + IFINFO_LEN) as u32).to_ne_bytes());
    message.extend(libc::RTM_NEWLINK.to_ne_bytes());
    message.extend(((libc::NLM_F_REQUEST | libc::NLM_F_ACK) as u16).to_ne_bytes());
    message.extend(seq.to_ne_bytes());
    message.extend(0u32.to_ne_bytes());
    // struct ifinfomsg
    message.push(libc::AF_UNSPEC as u8);
    message.push(0);
    message.extend(0u16.to_ne_bytes());
    message.extend((index as i32).to_ne_bytes());
    message.extend((libc::IFF_UP as u32).to_ne_bytes());
    message.extend((libc::IFF_UP as u32).to_ne_bytes());
    message
}

/// Checks the kernel's answer to [`link_up_request`]: `Ok` for an acknowledgement, the
/// kernel's error otherwise.
pub(crate) fn check_ack(reply: &[u8]) -> io::Result<()> {
    let malformed = || io::Error::new(io::ErrorKind::InvalidData, "malformed netlink reply");
    let field = |at: usize| -> io::Result<[u8; 4]> {
        reply
            .get(at..at + 4)
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or_else(malformed)
    };
    let kind = reply
        .get(4..6)
        .map(|bytes| u16::from_ne_bytes([bytes[0], bytes[1]]))
        .ok_or_else(malformed)?;
    if kind != libc::NLMSG_ERROR as u16 {
        return Err(malformed());
    }
    match i32::from_ne_bytes(field(HEADER_LEN)?) {
        0 => Ok(()),
        negated => Err(io::Error::from_raw_os_error(-negated)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_layout() {
        let request = link_up_request(1, 7);
        assert_eq!(request.len(), 32);
        assert_eq!(u32::from_ne_bytes(request[0..4].try_into().unwrap()), 32);
        assert_eq!(u16::from_ne_bytes(request[4..6].try_into().unwrap()), 16); // RTM_NEWLINK
        assert_eq!(u16::from_ne_bytes(request[6..8].try_into().unwrap()), 1 | 4);
        assert_eq!(u32::from_ne_bytes(request[8..12].try_into().unwrap()), 7);
        assert_eq!(i32::from_ne_bytes(request[20..24].try_into().unwrap()), 1);
        assert_eq!(u32::from_ne_bytes(request[24..28].try_into().unwrap()), 1); // IFF_UP
        assert_eq!(u32::from_ne_bytes(request[28..32].try_into().unwrap()), 1);
    }

    fn reply(kind: u16, error: i32) -> Vec<u8> {
        let mut reply = Vec::new();
        reply.extend(36u32.to_ne_bytes());
        reply.extend(kind.to_ne_bytes());
        reply.extend(0u16.to_ne_bytes());
        reply.extend(7u32.to_ne_bytes());
        reply.extend(0u32.to_ne_bytes());
        reply.extend(error.to_ne_bytes());
        reply
    }

    #[test]
    fn acknowledgement_and_errors() {
        check_ack(&reply(2, 0)).unwrap();
        let denied = check_ack(&reply(2, -1)).unwrap_err();
        assert_eq!(denied.raw_os_error(), Some(1));
        let other = check_ack(&reply(16, 0)).unwrap_err();
        assert_eq!(other.kind(), io::ErrorKind::InvalidData);
        assert!(check_ack(&[0; 6]).is_err());
    }
}
