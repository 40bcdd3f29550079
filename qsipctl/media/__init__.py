"""The media half of a test call: an asyncio RTP/RTCP session around the sans-IO rtp/ layer."""
