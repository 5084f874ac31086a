//! Values of P4 fields as P4Runtime carries them: unsigned big-endian
//! bytestrings (spec §8.4), always held here in canonical form (no leading
//! zero bytes, a single zero byte for 0) so that values read back from a
//! switch compare equal to the values written, whatever padding the switch
//! answers with.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// An unsigned value of a P4 field, parameter or metadata, in canonical
/// bytestring form.
///
/// Built from integers, byte slices, [`MacAddr`], [`Ipv4Addr`] and
/// [`Ipv6Addr`]; its width is checked against the P4Info bitwidth when it is
/// put into an entity, not here.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Value {
    /// Canonical: never empty, no leading zero byte unless it is `[0]`.
    bytes: Vec<u8>,
}

impl Value {
    /// The value of a big-endian bytestring, padded or not.
    #[must_use]
    pub fn from_be_bytes(bytes: &[u8]) -> Self {
        let first = bytes.iter().position(|b| *b != 0);
        let bytes = match first {
            Some(first) => bytes[first..].to_vec(),
            None => vec![0],
        };
        Self { bytes }
    }

    /// The canonical bytestring (what is sent on the wire).
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// How many bits the value needs (0 for the value 0).
    #[must_use]
    pub fn bits(&self) -> u32 {
        let first = self.bytes[0];
        if first == 0 {
            return 0;
        }
        let len = u32::try_from(self.bytes.len()).unwrap_or(u32::MAX);
        (len - 1).saturating_mul(8) + (8 - first.leading_zeros())
    }

    /// Whether the value fits a field of `bitwidth` bits. A bitwidth of 0
    /// is what the P4Info gives fields of translated types
    /// (`@p4runtime_translation`), whose width the switch checks: any value
    /// fits.
    #[must_use]
    pub fn fits(&self, bitwidth: u32) -> bool {
        bitwidth == 0 || self.bits() <= bitwidth
    }

    /// The value as an integer, if it fits 64 bits.
    #[must_use]
    pub fn as_u64(&self) -> Option<u64> {
        (self.bits() <= 64).then(|| self.fold())
    }

    /// The value as an integer, if it fits 128 bits.
    #[must_use]
    pub fn as_u128(&self) -> Option<u128> {
        (self.bits() <= 128).then(|| {
            self.bytes
                .iter()
                .fold(0u128, |acc, b| (acc << 8) | u128::from(*b))
        })
    }

    /// The value as a MAC address, if it fits 48 bits.
    #[must_use]
    pub fn as_mac(&self) -> Option<MacAddr> {
        let bytes = self.padded(6)?;
        let mut mac = [0u8; 6];
        mac.copy_from_slice(&bytes);
        Some(MacAddr(mac))
    }

    /// The value as an IPv4 address, if it fits 32 bits.
    #[must_use]
    pub fn as_ipv4(&self) -> Option<Ipv4Addr> {
        self.as_u64()
            .and_then(|v| u32::try_from(v).ok())
            .map(Ipv4Addr::from)
    }

    /// The value as an IPv6 address.
    #[must_use]
    pub fn as_ipv6(&self) -> Option<Ipv6Addr> {
        self.as_u128().map(Ipv6Addr::from)
    }

    /// The value left-padded with zeros to `len` bytes, if it fits.
    #[must_use]
    pub fn padded(&self, len: usize) -> Option<Vec<u8>> {
        if self.bits() == 0 {
            return Some(vec![0; len]);
        }
        let extra = len.checked_sub(self.bytes.len())?;
        let mut out = vec![0; extra];
        out.extend_from_slice(&self.bytes);
        Some(out)
    }

    fn fold(&self) -> u64 {
        self.bytes
            .iter()
            .fold(0u64, |acc, b| (acc << 8) | u64::from(*b))
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Small values print in decimal, wide ones (addresses, hashes) in hex.
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.as_u64() {
            Some(v) if self.bits() <= 32 => write!(f, "{v}"),
            _ => {
                f.write_str("0x")?;
                for b in &self.bytes {
                    write!(f, "{b:02x}")?;
                }
                Ok(())
            }
        }
    }
}

macro_rules! value_from_uint {
    ($($t:ty),*) => {$(
        impl From<$t> for Value {
            fn from(value: $t) -> Self {
                Self::from_be_bytes(&value.to_be_bytes())
            }
        }
    )*};
}
value_from_uint!(u8, u16, u32, u64, u128);

impl From<bool> for Value {
    fn from(value: bool) -> Self {
        Self::from(u8::from(value))
    }
}

impl From<&[u8]> for Value {
    fn from(bytes: &[u8]) -> Self {
        Self::from_be_bytes(bytes)
    }
}

impl From<Vec<u8>> for Value {
    fn from(bytes: Vec<u8>) -> Self {
        Self::from_be_bytes(&bytes)
    }
}

impl<const N: usize> From<[u8; N]> for Value {
    fn from(bytes: [u8; N]) -> Self {
        Self::from_be_bytes(&bytes)
    }
}

impl From<&Value> for Value {
    fn from(value: &Value) -> Self {
        value.clone()
    }
}

impl From<MacAddr> for Value {
    fn from(mac: MacAddr) -> Self {
        Self::from_be_bytes(&mac.0)
    }
}

impl From<Ipv4Addr> for Value {
    fn from(addr: Ipv4Addr) -> Self {
        Self::from_be_bytes(&addr.octets())
    }
}

impl From<Ipv6Addr> for Value {
    fn from(addr: Ipv6Addr) -> Self {
        Self::from_be_bytes(&addr.octets())
    }
}

/// A 48-bit Ethernet address.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct MacAddr(pub [u8; 6]);

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

/// Why a string is not a MAC address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a MAC address (expected six hex octets separated by ':' or '-')")]
pub struct ParseMacError(String);

impl FromStr for MacAddr {
    type Err = ParseMacError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let err = || ParseMacError(text.to_owned());
        let mut mac = [0u8; 6];
        let mut octets = text.split([':', '-']);
        for slot in &mut mac {
            let octet = octets.next().ok_or_else(err)?;
            if octet.is_empty() || octet.len() > 2 {
                return Err(err());
            }
            *slot = u8::from_str_radix(octet, 16).map_err(|_| err())?;
        }
        if octets.next().is_some() {
            return Err(err());
        }
        Ok(Self(mac))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_encode_to_canonical_bytestrings() {
        assert_eq!(Value::from(0u32).as_bytes(), &[0]);
        assert_eq!(Value::from(1u8).as_bytes(), &[1]);
        assert_eq!(Value::from(0x1ffu16).as_bytes(), &[0x01, 0xff]);
        assert_eq!(Value::from(0x0100_0000u64).as_bytes(), &[1, 0, 0, 0]);
        // Padded and unpadded forms of one value are the same value.
        assert_eq!(
            Value::from_be_bytes(&[0, 0, 0x01, 0xff]),
            Value::from(511u64)
        );
        assert_eq!(Value::from_be_bytes(&[]), Value::from(0u8));
    }

    #[test]
    fn bits_are_counted_exactly() {
        assert_eq!(Value::from(0u8).bits(), 0);
        assert_eq!(Value::from(1u8).bits(), 1);
        assert_eq!(Value::from(255u16).bits(), 8);
        assert_eq!(Value::from(256u16).bits(), 9);
        assert_eq!(Value::from(511u16).bits(), 9);
        assert_eq!(Value::from(512u16).bits(), 10);
        assert_eq!(Value::from(u64::MAX).bits(), 64);
        assert!(Value::from(511u16).fits(9));
        assert!(!Value::from(512u16).fits(9));
        assert!(Value::from(u128::MAX).fits(0), "bitwidth 0 is unchecked");
    }

    #[test]
    fn addresses_encode_and_decode() {
        let mac: MacAddr = "00:1b:21:0a:0b:0c".parse().unwrap();
        let value = Value::from(mac);
        // The leading zero octet is not sent.
        assert_eq!(value.as_bytes(), &[0x1b, 0x21, 0x0a, 0x0b, 0x0c]);
        assert_eq!(value.as_mac(), Some(mac));
        assert_eq!(mac.to_string(), "00:1b:21:0a:0b:0c");
        assert!("00:1b:21:0a:0b".parse::<MacAddr>().is_err());
        assert!("00:1b:21:0a:0b:0c:0d".parse::<MacAddr>().is_err());
        assert!("00:1b:21:0a:0b:zz".parse::<MacAddr>().is_err());

        let ip = Ipv4Addr::new(10, 0, 0, 1);
        assert_eq!(Value::from(ip).as_bytes(), &[10, 0, 0, 1]);
        assert_eq!(Value::from(ip).as_ipv4(), Some(ip));
        assert_eq!(Value::from(Ipv4Addr::new(0, 0, 1, 2)).as_bytes(), &[1, 2]);
        let ip6: Ipv6Addr = "2001:db8::1".parse().unwrap();
        assert_eq!(Value::from(ip6).as_ipv6(), Some(ip6));
        assert_eq!(Value::from(ip6).bits(), 126);
    }

    #[test]
    fn conversions_refuse_values_that_do_not_fit() {
        let wide = Value::from(u128::MAX);
        assert_eq!(wide.as_u64(), None);
        assert_eq!(wide.as_mac(), None);
        assert_eq!(wide.as_ipv4(), None);
        assert_eq!(Value::from(7u8).padded(2), Some(vec![0, 7]));
        assert_eq!(Value::from(0x1234u16).padded(1), None);
    }

    #[test]
    fn display_is_decimal_when_small_hex_when_wide() {
        assert_eq!(Value::from(42u8).to_string(), "42");
        assert_eq!(
            Value::from(MacAddr([0, 0x1b, 0, 0, 0, 1])).to_string(),
            "0x1b00000001"
        );
    }
}
