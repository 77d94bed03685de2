//! The headers a forwarded record gets, naming where it came from:
//! `runnel.forward.topic`, `runnel.forward.partition` and
//! `runnel.forward.offset`, values as decimal text. One poll's values are
//! written into one buffer, so a record costs no allocation of its own.

use std::fmt::Write;
use std::ops::Range;

use runnel_client::ConsumerRecord;

pub const TOPIC: &str = "runnel.forward.topic";
pub const PARTITION: &str = "runnel.forward.partition";
pub const OFFSET: &str = "runnel.forward.offset";

/// The origin headers' values of one poll's records.
pub struct OriginHeaders<'a> {
    records: &'a [ConsumerRecord],
    text: String,
    /// Per record: its partition's and its offset's text in `text`.
    spans: Vec<(Range<usize>, Range<usize>)>,
}

impl<'a> OriginHeaders<'a> {
    pub fn for_records(records: &'a [ConsumerRecord]) -> Self {
        let mut text = String::with_capacity(records.len() * 16);
        let mut spans = Vec::with_capacity(records.len());
        for record in records {
            let start = text.len();
            // Writing to a String cannot fail.
            let _ = write!(text, "{}", record.partition);
            let partition = start..text.len();
            let _ = write!(text, "{}", record.offset);
            spans.push((partition.clone(), partition.end..text.len()));
        }
        Self {
            records,
            text,
            spans,
        }
    }

    /// Appends record `index`'s origin headers to `headers`.
    pub fn push_for<'h>(&'h self, index: usize, headers: &mut Vec<(&'h str, &'h [u8])>) {
        let (partition, offset) = &self.spans[index];
        headers.push((TOPIC, self.records[index].topic.as_bytes()));
        headers.push((PARTITION, self.text[partition.clone()].as_bytes()));
        headers.push((OFFSET, self.text[offset.clone()].as_bytes()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn record(topic: &str, partition: i32, offset: i64) -> ConsumerRecord {
        ConsumerRecord {
            topic: Arc::from(topic),
            partition,
            offset,
            timestamp: 0,
            key: None,
            value: None,
            headers_data: Default::default(),
            headers_count: 0,
        }
    }

    #[test]
    fn each_record_names_its_topic_partition_and_offset() {
        let records = [record("orders", 1, 41), record("orders", 12, 1_000_000)];
        let origins = OriginHeaders::for_records(&records);
        let mut headers = Vec::new();
        origins.push_for(1, &mut headers);
        assert_eq!(
            headers,
            vec![
                (TOPIC, &b"orders"[..]),
                (PARTITION, &b"12"[..]),
                (OFFSET, &b"1000000"[..]),
            ]
        );
        headers.clear();
        origins.push_for(0, &mut headers);
        assert_eq!(headers[1..], [(PARTITION, &b"1"[..]), (OFFSET, &b"41"[..])]);
    }
}
