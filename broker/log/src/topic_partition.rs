//! A partition's name and its directory name, `<topic>-<partition>`.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    pub topic: String,
    pub partition: i32,
}

impl TopicPartition {
    pub fn new(topic: impl Into<String>, partition: i32) -> Self {
        Self {
            topic: topic.into(),
            partition,
        }
    }

    /// Parses a log directory name; the partition follows the last `-`, since
    /// topic names may hold dashes. Kafka's `-delete` and `-future` dirs and
    /// anything else that does not end in a number are not partitions.
    pub fn from_dir_name(name: &str) -> Option<Self> {
        let (topic, partition) = name.rsplit_once('-')?;
        if topic.is_empty()
            || partition.is_empty()
            || !partition.bytes().all(|b| b.is_ascii_digit())
        {
            return None;
        }
        Some(Self::new(topic, partition.parse().ok()?))
    }

    pub fn dir_name(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_dir_names_with_dashes_in_the_topic() {
        assert_eq!(
            TopicPartition::from_dir_name("orders-eu-12"),
            Some(TopicPartition::new("orders-eu", 12))
        );
        assert_eq!(TopicPartition::from_dir_name("orders"), None);
        assert_eq!(TopicPartition::from_dir_name("orders-0.abc-delete"), None);
        assert_eq!(TopicPartition::new("a", 3).dir_name(), "a-3");
    }
}
