"""The container image: a busybox rootfs built offline, imported tarballs and the rules they must pass."""
