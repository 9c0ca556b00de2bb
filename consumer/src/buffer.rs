//! Fetched data waiting to be handed to the application, and the `max_poll_records` cut.
//!
//! A fetch response is kept whole (its batches are reference-counted views of the response
//! buffer); a poll hands out at most `max_poll_records` records of it by narrowing the offset
//! range each [`FetchedPartition`] exposes, so no record is copied or decoded twice beyond the
//! one or two batches where a cut falls, and a batch cut by several polls is walked once: each
//! part remembers where in the batch it begins ([`FetchedPartition::resume`]).

use kafkawire_protocol::records::Batch;

use crate::FetchedPartition;

/// Splits `p` so that the first part holds at most `quota` records (control records, which
/// [`FetchedPartition::records`] never yields, are not counted). Returns the first part, the
/// rest if any, and how many records the first part holds.
///
/// Whole batches are counted from their headers; only the batch where the cut falls, or a
/// batch that straddles the range's start, is walked record by record. A record that does not
/// decode stops the counting and the partition is handed out whole, so the application meets
/// the error through [`FetchedPartition::records`] instead of it being hidden here.
pub(crate) fn split(
    p: FetchedPartition,
    quota: usize,
) -> (FetchedPartition, Option<FetchedPartition>, usize) {
    let (from, end) = (p.fetch_offset, p.end_offset);
    let mut n = 0usize;
    let mut cut = None;
    // The highest offset counted so far: a cut must lie above it, so that each part moves the
    // position forward (records whose offsets do not increase, which only a broker at fault
    // sends, make the partition go out whole instead).
    let mut highest: Option<i64> = None;
    // Where in its batch the cut record is, for the rest to continue from.
    let mut cut_at = None;
    'batches: for b in p.batches.iter() {
        if b.is_control() || b.last_offset() < from || b.base_offset() >= end {
            continue;
        }
        if b.base_offset() >= from
            && b.last_offset() < end
            && n.saturating_add(b.record_count()) <= quota
        {
            n += b.record_count();
            highest = highest.max(Some(b.last_offset()));
            continue;
        }
        let mut records = match p.resume {
            Some((base, at)) if base == b.base_offset() => b.records_from(at),
            _ => b.records(),
        };
        loop {
            let before = records.position();
            let Some(r) = records.next() else { break };
            let Ok(r) = r else {
                return (p, None, n);
            };
            let offset = r.offset();
            if offset < from || offset >= end {
                continue;
            }
            if highest.is_some_and(|h| offset <= h) {
                return (p, None, n);
            }
            if n == quota {
                cut = Some(offset);
                cut_at = Some((b.base_offset(), before));
                break 'batches;
            }
            n += 1;
            highest = Some(offset);
        }
    }
    let Some(cut) = cut else {
        return (p, None, n);
    };
    let keep = |b: &&Batch| b.base_offset() < cut;
    let first = FetchedPartition {
        topic: p.topic.clone(),
        partition: p.partition,
        fetch_offset: from,
        end_offset: cut,
        high_watermark: p.high_watermark,
        last_stable_offset: p.last_stable_offset,
        log_start_offset: p.log_start_offset,
        reset: p.reset,
        batches: p.batches.iter().filter(keep).cloned().collect(),
        resume: p.resume,
    };
    let rest = FetchedPartition {
        fetch_offset: cut,
        reset: None,
        batches: p
            .batches
            .into_iter()
            .filter(|b| b.last_offset() >= cut)
            .collect(),
        resume: cut_at,
        ..p
    };
    (first, Some(rest), n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use kafkawire_protocol::records::{EndTxnMarker, RecordBatchBuilder, RecordSet, control_batch};

    fn batch(base: i64, n: usize) -> Bytes {
        let mut b = RecordBatchBuilder::new();
        b.base_offset(base);
        for i in 0..n {
            b.push(
                0,
                None,
                Some(format!("v{}", base + i as i64).as_bytes()),
                &[],
            )
            .unwrap();
        }
        b.build().unwrap()
    }

    fn partition(parts: &[Bytes], from: i64, end: i64) -> FetchedPartition {
        let all: Vec<u8> = parts.iter().flat_map(|b| b.iter().copied()).collect();
        FetchedPartition {
            topic: "t".into(),
            partition: 0,
            fetch_offset: from,
            end_offset: end,
            high_watermark: end,
            last_stable_offset: -1,
            log_start_offset: 0,
            reset: None,
            batches: RecordSet::new(Bytes::from(all))
                .map(|b| b.unwrap())
                .collect(),
            resume: None,
        }
    }

    fn offsets(p: &FetchedPartition) -> Vec<i64> {
        p.records().map(|r| r.unwrap().offset()).collect()
    }

    #[test]
    fn every_quota_hands_out_each_record_exactly_once_in_order() {
        // Batches of 3, 1 and 4 records, a transaction marker at 8, then 2 more; the fetch
        // started at offset 1 (inside the first batch).
        let marker = control_batch(
            8,
            0,
            7,
            0,
            0,
            EndTxnMarker {
                commit: true,
                coordinator_epoch: 0,
            },
        );
        let parts = [batch(0, 3), batch(3, 1), batch(4, 4), marker, batch(9, 2)];
        let want: Vec<i64> = vec![1, 2, 3, 4, 5, 6, 7, 9, 10];
        for quota in 1..=12 {
            let mut rest = Some(partition(&parts, 1, 11));
            let mut got = Vec::new();
            let mut expected_start = 1;
            while let Some(p) = rest.take() {
                assert_eq!(p.fetch_offset, expected_start);
                let (first, more, n) = split(p, quota);
                let o = offsets(&first);
                assert_eq!(
                    o.len(),
                    n,
                    "quota {quota}: count matches what records() yields"
                );
                assert!(n <= quota, "quota {quota}: {n} records handed out");
                if more.is_some() {
                    assert_eq!(n, quota, "a cut only happens when the quota is full");
                }
                expected_start = first.end_offset;
                got.extend(o);
                rest = more;
            }
            assert_eq!(got, want, "quota {quota}");
            assert_eq!(
                expected_start, 11,
                "the last part ends where the fetch ended"
            );
        }
    }

    #[test]
    fn a_cut_keeps_only_the_batches_each_part_needs() {
        let p = partition(&[batch(0, 4), batch(4, 4)], 0, 8);
        let (first, rest, n) = split(p, 5);
        assert_eq!(n, 5);
        assert_eq!(first.batches.len(), 2);
        assert_eq!(first.end_offset, 5);
        let rest = rest.unwrap();
        assert_eq!(rest.batches.len(), 1, "the first batch is behind the cut");
        assert_eq!(offsets(&rest), vec![5, 6, 7]);
    }

    #[test]
    fn a_reset_report_stays_with_the_first_part() {
        let mut p = partition(&[batch(10, 4)], 10, 14);
        p.reset = Some((3, 10));
        let (first, rest, _) = split(p, 2);
        assert_eq!(first.reset, Some((3, 10)));
        assert_eq!(rest.unwrap().reset, None);
    }
}
