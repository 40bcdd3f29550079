"""Q-SYS Remote Control (QRC): drive a core's own Softphone component.

``protocol`` is sans-IO (NUL-framed JSON-RPC 2.0, request ids, pushed
notifications, keep-alive deadlines); ``client`` is the thin asyncio
transport; ``viacore`` is the diagnostic that makes the core itself place a
test call.  Built from QSC's published protocol (see docs/via-core.md).
"""
