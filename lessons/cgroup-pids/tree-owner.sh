#!/bin/sh
# Who manages the cgroup tree the lesson's cgroup lives in: systemd through the scope it delegated to workshop,
# or, on a machine without systemd, nobody but workshop.
if [ "$(cat /proc/1/comm)" = systemd ] && [ "$(stat -fc %T /sys/fs/cgroup)" = cgroup2fs ]; then
  echo "PID 1 is systemd, and it manages this tree; workshop's cgroups are in the unit it delegated:"
  systemctl show --property=Id,Slice,ControlGroup,Delegate workshop.scope
else
  echo "PID 1 is $(cat /proc/1/comm), not systemd: no manager to ask, workshop keeps its cgroups in workshop/"
fi
