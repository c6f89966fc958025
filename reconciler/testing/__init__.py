"""Test helpers shipped with the package: real SSH servers on loopback (asyncssh, OpenSSH)."""
