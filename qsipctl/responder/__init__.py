"""qsipctl.responder: the far-side helper for NAT/firewall tests (sans-IO core + asyncio server)."""
