//! P4Runtime bytestrings (spec §8.4): unsigned big-endian values of a known
//! bitwidth. Writes may carry leading zero bytes (the receiver must accept
//! both shapes); reads always answer in canonical form (no leading zeros, a
//! single zero byte for 0).

use tonic::Code;

/// Why a bytestring was refused; the update fails with [`Self::code`].
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ValueError {
    /// An empty bytestring is not a value. The client is at fault.
    #[error("empty bytestring")]
    Empty,
    /// The value needs more bits than the field has. The client is at fault.
    #[error("value 0x{value} does not fit in {bitwidth} bits")]
    TooWide {
        /// Hex digits of the value as sent, without leading zeros.
        value: String,
        /// The field's bitwidth from the P4Info.
        bitwidth: u32,
    },
}

impl ValueError {
    /// The canonical code the spec gives this error.
    pub fn code(&self) -> Code {
        match self {
            ValueError::Empty => Code::InvalidArgument,
            ValueError::TooWide { .. } => Code::OutOfRange,
        }
    }
}

/// Decodes a bytestring of a field `bitwidth` bits wide (at most 64).
///
/// # Errors
/// [`ValueError`] when empty or too wide.
pub fn decode(bytes: &[u8], bitwidth: u32) -> Result<u64, ValueError> {
    if bytes.is_empty() {
        return Err(ValueError::Empty);
    }
    let significant = &bytes[bytes.iter().take_while(|b| **b == 0).count()..];
    let too_wide = || ValueError::TooWide {
        value: hex(significant),
        bitwidth,
    };
    if significant.len() > 8 {
        return Err(too_wide());
    }
    let value = significant
        .iter()
        .fold(0u64, |acc, byte| (acc << 8) | u64::from(*byte));
    if bitwidth < 64 && value >> bitwidth != 0 {
        return Err(too_wide());
    }
    Ok(value)
}

/// The canonical bytestring of `value`.
pub fn encode(value: u64) -> Vec<u8> {
    let bytes = value.to_be_bytes();
    let first = bytes.iter().position(|b| *b != 0).unwrap_or(7);
    bytes[first..].to_vec()
}

fn hex(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return "0".into();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_padded_and_canonical_refuses_too_wide_and_empty() {
        assert_eq!(decode(&[0x01, 0xff], 9), Ok(511));
        assert_eq!(decode(&[0x00, 0x00, 0x05], 9), Ok(5));
        assert_eq!(decode(&[0x00], 9), Ok(0));
        assert_eq!(
            decode(&[0x02, 0x00], 9),
            Err(ValueError::TooWide {
                value: "0200".into(),
                bitwidth: 9
            })
        );
        assert_eq!(decode(&[], 9), Err(ValueError::Empty));
        assert_eq!(decode(&[0; 20], 32), Ok(0));
        assert!(decode(&[1; 9], 64).is_err());
        assert_eq!(ValueError::Empty.code(), Code::InvalidArgument);
    }

    #[test]
    fn encodes_canonically() {
        assert_eq!(encode(0), vec![0]);
        assert_eq!(encode(5), vec![5]);
        assert_eq!(encode(0x1ff), vec![1, 0xff]);
        assert_eq!(encode(u64::MAX), vec![0xff; 8]);
    }

    proptest! {
        #[test]
        fn round_trips(value in any::<u64>(), pad in 0usize..4) {
            let mut bytes = vec![0; pad];
            bytes.extend(encode(value));
            prop_assert_eq!(decode(&bytes, 64), Ok(value));
            prop_assert_eq!(encode(decode(&bytes, 64).unwrap()), encode(value));
        }
    }
}
