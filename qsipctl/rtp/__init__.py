"""RTP and RTCP (RFC 3550), codecs, telephone-events and stream statistics, sans-IO."""
