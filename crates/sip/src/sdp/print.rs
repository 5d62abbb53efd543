//! Printing session descriptions: CRLF line endings (RFC 8866 §5) and the line order of RFC 8866
//! §5, session `v o s i u e p c b t r z k a`, then per media `m i c b k a`.
//!
//! Printing is the inverse of parsing: for every parsed `x`, `parse(print(x)) == x`.

use std::fmt::{self, Write};

use super::model::{Attribute, Line, MediaDescription, SessionDescription, Timing};

const CRLF: &str = "\r\n";

impl fmt::Display for SessionDescription {
    /// Writes the description as a message body.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let o = &self.origin;
        write!(f, "v={}{CRLF}", SessionDescription::VERSION)?;
        write!(f, "o={} {} {} {}{CRLF}", o.username, o.session_id, o.session_version, o.address)?;
        // An empty session name is written as one space, the form RFC 8866 §5.3 allows; parsing
        // drops trailing whitespace, so it reads back as empty.
        let name = if self.session_name.is_empty() { " " } else { self.session_name.as_str() };
        write!(f, "s={name}{CRLF}")?;
        write_lines(f, &self.lines, |l| l.session_rank() <= 3)?;
        if let Some(c) = &self.connection {
            write!(f, "c={c}{CRLF}")?;
        }
        write_lines(f, &self.lines, |l| l.session_rank() == 4)?;
        if self.timing.is_empty() {
            // A description needs a t= line (RFC 8866 §5.9); a built one may have none.
            write_timing(f, &Timing::default())?;
        }
        for t in &self.timing {
            write_timing(f, t)?;
        }
        write_lines(f, &self.lines, |l| l.session_rank() >= 5)?;
        for a in &self.attributes {
            write!(f, "a={a}{CRLF}")?;
        }
        for m in &self.media {
            write!(f, "{m}")?;
        }
        Ok(())
    }
}

impl fmt::Display for MediaDescription {
    /// Writes the media section, from its `m=` line to its last attribute.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "m={} {}", self.kind.as_str(), self.port)?;
        if let Some(count) = self.port_count {
            write!(f, "/{count}")?;
        }
        write!(f, " {}", self.protocol)?;
        for format in &self.formats {
            write!(f, " {format}")?;
        }
        f.write_str(CRLF)?;
        write_lines(f, &self.lines, |l| l.media_rank() == 0)?;
        if let Some(c) = &self.connection {
            write!(f, "c={c}{CRLF}")?;
        }
        write_lines(f, &self.lines, |l| l.media_rank() > 0)?;
        for a in &self.attributes {
            write!(f, "a={a}{CRLF}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Attribute {
    /// Writes the attribute without its `a=` prefix.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Attribute::RtpMap(map) => write!(f, "rtpmap:{} {map}", map.payload_type),
            Attribute::Fmtp(fmtp) if fmtp.params.is_empty() => write!(f, "fmtp:{}", fmtp.payload_type),
            Attribute::Fmtp(fmtp) => write!(f, "fmtp:{} {}", fmtp.payload_type, fmtp.params),
            Attribute::Ptime(ms) => write!(f, "ptime:{ms}"),
            Attribute::MaxPtime(ms) => write!(f, "maxptime:{ms}"),
            Attribute::Direction(d) => f.write_str(d.as_str()),
            Attribute::Rtcp(rtcp) => {
                write!(f, "rtcp:{}", rtcp.port)?;
                match &rtcp.address {
                    Some(address) => write!(f, " {address}"),
                    None => Ok(()),
                }
            }
            Attribute::RtcpMux => f.write_str("rtcp-mux"),
            Attribute::Other { name, value: Some(value) } => write!(f, "{name}:{value}"),
            Attribute::Other { name, value: None } => f.write_str(name),
        }
    }
}

fn write_timing(f: &mut fmt::Formatter<'_>, t: &Timing) -> fmt::Result {
    write!(f, "t={} {}{CRLF}", t.start, t.stop)?;
    for r in &t.repeats {
        write!(f, "r={r}{CRLF}")?;
    }
    Ok(())
}

fn write_lines(f: &mut fmt::Formatter<'_>, lines: &[Line], keep: impl Fn(&Line) -> bool) -> fmt::Result {
    for line in lines.iter().filter(|l| keep(l)) {
        f.write_char(line.kind)?;
        write!(f, "={}{CRLF}", line.value)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    use super::super::direction::Direction;
    use super::super::model::{AddrType, Address, Fmtp, MediaKind, Origin, Rtcp, RtpMap};
    use super::*;

    fn origin() -> Origin {
        Origin { username: "-".to_owned(), session_id: 42, session_version: 7, address: Address::Ip(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))) }
    }

    #[test]
    fn prints_crlf_lines_in_rfc_8866_order() {
        let mut sdp = SessionDescription::new(origin());
        // Stored in parse order (sorted by rank), printed around c= and t= where RFC 8866 §5
        // puts them.
        for (kind, value) in [('i', "info"), ('b', "AS:64"), ('k', "prompt"), ('y', "1")] {
            sdp.lines.push(Line { kind, value: value.to_owned() });
        }
        sdp.connection = Some(Address::Ip(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))));
        sdp.timing[0].repeats.push("7d 1h 0 25h".to_owned());
        sdp.attributes.push(Attribute::Direction(Direction::SendOnly));
        let mut m = MediaDescription::new(MediaKind::Audio, 4000, "RTP/AVP");
        m.formats = vec!["8".to_owned(), "101".to_owned()];
        m.lines.push(Line { kind: 'i', value: "voice".to_owned() });
        m.lines.push(Line { kind: 'b', value: "AS:80".to_owned() });
        m.connection = Some(Address::Ip(IpAddr::V6(Ipv6Addr::LOCALHOST)));
        m.attributes.push(Attribute::RtpMap(RtpMap::new(8, "PCMA", 8000)));
        m.attributes.push(Attribute::Fmtp(Fmtp { payload_type: 101, params: "0-16".to_owned() }));
        m.attributes.push(Attribute::Ptime(20));
        m.attributes.push(Attribute::MaxPtime(40));
        m.attributes.push(Attribute::Rtcp(Rtcp { port: 4001, address: None }));
        m.attributes.push(Attribute::RtcpMux);
        m.attributes.push(Attribute::Direction(Direction::Inactive));
        sdp.media.push(m);
        let mut video = MediaDescription::new(MediaKind::Video, 0, "RTP/AVP");
        video.port_count = Some(2);
        video.formats.push("97".to_owned());
        sdp.media.push(video);
        let expected = "v=0\r\no=- 42 7 IN IP4 192.0.2.1\r\ns=-\r\ni=info\r\nc=IN IP4 192.0.2.1\r\nb=AS:64\r\n\
                        t=0 0\r\nr=7d 1h 0 25h\r\nk=prompt\r\ny=1\r\na=sendonly\r\n\
                        m=audio 4000 RTP/AVP 8 101\r\ni=voice\r\nc=IN IP6 ::1\r\nb=AS:80\r\n\
                        a=rtpmap:8 PCMA/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\na=maxptime:40\r\n\
                        a=rtcp:4001\r\na=rtcp-mux\r\na=inactive\r\nm=video 0/2 RTP/AVP 97\r\n";
        assert_eq!(sdp.to_string(), expected);
        assert_eq!(SessionDescription::parse(expected), Ok(sdp));
    }

    #[test]
    fn attributes_print_as_written() {
        let rtcp = Address::Ip(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 9)));
        let cases = [
            (Attribute::RtpMap(RtpMap { channels: Some(2), ..RtpMap::new(111, "opus", 48000) }), "rtpmap:111 opus/48000/2"),
            (Attribute::Fmtp(Fmtp { payload_type: 0, params: String::new() }), "fmtp:0"),
            (Attribute::Rtcp(Rtcp { port: 5001, address: Some(rtcp) }), "rtcp:5001 IN IP4 192.0.2.9"),
            (Attribute::other("rtcp-rsize", None), "rtcp-rsize"),
            (Attribute::other("lang", Some("")), "lang:"),
            (Attribute::other("ssrc", Some("1 cname:x")), "ssrc:1 cname:x"),
        ];
        for (attribute, text) in cases {
            assert_eq!(attribute.to_string(), text);
        }
        let name = Address::Name { addr_type: AddrType::Ip6, name: "host.example".to_owned() };
        assert_eq!(name.to_string(), "IN IP6 host.example");
    }

    #[test]
    fn empty_session_name_prints_a_space_and_reads_back_empty() {
        let mut sdp = SessionDescription::new(origin());
        sdp.session_name.clear();
        let text = sdp.to_string();
        assert!(text.contains("\r\ns= \r\n"), "{text:?}");
        assert_eq!(SessionDescription::parse(&text), Ok(sdp));
    }

    #[test]
    fn a_built_description_without_timing_still_gets_t_0_0() {
        let mut sdp = SessionDescription::new(origin());
        sdp.timing.clear();
        assert_eq!(sdp.to_string(), "v=0\r\no=- 42 7 IN IP4 192.0.2.1\r\ns=-\r\nt=0 0\r\n");
    }

    #[test]
    fn every_line_ends_with_crlf() {
        let sdp = super::super::examples::parsed(super::super::examples::KITCHEN_SINK);
        let text = sdp.to_string();
        assert!(text.ends_with("\r\n"));
        assert_eq!(text.matches('\n').count(), text.matches("\r\n").count());
        assert_eq!(text.lines().count(), super::super::examples::KITCHEN_SINK.lines().count());
    }
}
