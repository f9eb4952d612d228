#!/bin/sh
# pids-cgroup.sh v1|v2 PID -> the cgroup the pids controller counts PID in, read from /proc/PID/cgroup.
# Each line there is "hierarchy:controllers:path". On cgroup v1 the pids controller has its own hierarchy
# (a line like "8:pids:/workshop/ws1a2b3c"); on v2 there is one hierarchy for all ("0::/workshop/ws1a2b3c").
case "$1" in
  v1) awk -F: '$2 ~ /(^|,)pids(,|$)/ { print $3 }' "/proc/$2/cgroup" ;;
  v2) awk -F: '$1 == "0" && $2 == "" { print $3 }' "/proc/$2/cgroup" ;;
  *) echo "usage: $0 v1|v2 PID" >&2; exit 2 ;;
esac
