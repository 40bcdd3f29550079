"""qsipctl.nat: NAT and firewall diagnosis between this machine and a site's servers."""
