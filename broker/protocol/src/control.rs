//! Control records: the single record of a control batch. Transaction
//! markers are the kind Kafka writes (key: version 0 and the type, 0 abort
//! or 1 commit; value: version 0 and the coordinator's epoch).

const CONTROL_VERSION: i16 = 0;

/// What a transaction marker says of its producer's open transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlType {
    Abort,
    Commit,
}

impl ControlType {
    /// The control record's key.
    pub fn key(self) -> [u8; 4] {
        let kind: i16 = match self {
            Self::Abort => 0,
            Self::Commit => 1,
        };
        let mut key = [0; 4];
        key[..2].copy_from_slice(&CONTROL_VERSION.to_be_bytes());
        key[2..].copy_from_slice(&kind.to_be_bytes());
        key
    }

    /// A transaction marker's value.
    pub fn value(coordinator_epoch: i32) -> [u8; 6] {
        let mut value = [0; 6];
        value[..2].copy_from_slice(&CONTROL_VERSION.to_be_bytes());
        value[2..].copy_from_slice(&coordinator_epoch.to_be_bytes());
        value
    }

    /// The type a control record's key names; `None` for other kinds of
    /// control record (Kafka has more, for KRaft) or an unreadable key.
    pub fn parse(key: &[u8]) -> Option<Self> {
        let kind = i16::from_be_bytes(key.get(2..4)?.try_into().ok()?);
        match kind {
            0 => Some(Self::Abort),
            1 => Some(Self::Commit),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_values_are_kafkas() {
        assert_eq!(ControlType::Abort.key(), [0, 0, 0, 0]);
        assert_eq!(ControlType::Commit.key(), [0, 0, 0, 1]);
        assert_eq!(ControlType::value(5), [0, 0, 0, 0, 0, 5]);
        assert_eq!(ControlType::parse(&[0, 0, 0, 1]), Some(ControlType::Commit));
        assert_eq!(ControlType::parse(&[0, 0, 0, 0]), Some(ControlType::Abort));
        assert_eq!(ControlType::parse(&[0, 0, 0, 7]), None);
        assert_eq!(ControlType::parse(&[0]), None);
    }
}
