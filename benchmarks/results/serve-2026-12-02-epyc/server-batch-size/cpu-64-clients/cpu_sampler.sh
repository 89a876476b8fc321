#!/bin/bash
# Every 2 s: the CPU% (of one core) of the load generator and the server, from /proc/PID/stat.
out=$1; echo "t,load_gen_pct,server_pct" > $out
hz=$(getconf CLK_TCK); prev_l=0; prev_s=0; t0=$(date +%s.%N)
while true; do
  lg=$(pgrep -f "benchmarks/serve_load.py" | head -1); sv=$(pgrep -f "seqclf.cli serve" | head -1)
  l=0; s=0
  [ -n "$lg" ] && l=$(awk '{print $14+$15}' /proc/$lg/stat 2>/dev/null || echo 0)
  [ -n "$sv" ] && s=$(awk '{print $14+$15}' /proc/$sv/stat 2>/dev/null || echo 0)
  now=$(date +%s.%N)
  echo "$(echo "$now - $t0" | bc),$(( (l - prev_l) * 100 / hz / 2 )),$(( (s - prev_s) * 100 / hz / 2 ))" >> $out
  prev_l=$l; prev_s=$s; sleep 2
  [ -z "$lg" ] && [ "$(echo "$now - $t0 > 20" | bc)" = 1 ] && break
done
