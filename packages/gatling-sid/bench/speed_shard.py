"""One shard in-process, records per CPU-second (PYTHONPATH=<old src> to time another version)."""

import time

from datacore import ShardTask, Telemetry
from gatling_sid import GatlingConfig, GatlingGenerator

gen = GatlingGenerator(GatlingConfig(negatives=0.3))
list(gen.generate_shard(ShardTask(0, 1, 200, 0), Telemetry()))
t = time.process_time()
recs = list(gen.generate_shard(ShardTask(1, 2, 2000, 0), Telemetry()))
print(len(recs), f"{len(recs) / (time.process_time() - t):.0f} records per CPU-second")
