import { startCluster, type ClusterHandle } from '../../../scripts/cluster/cluster';
import { UPSTREAM_KEY, UPSTREAM_KEY_ENV } from '../../helpers/gateway';

/**
 * A cluster of a test file's own (scripts/cluster): its own ports from
 * `basePort`, its own databases and folder named after `name`, so
 * `npm run cluster` and the other cluster test can run beside it; dropped when
 * it stops (unless KEEP_TEST_DB=1), without the web UI, and with the gateways
 * set to reach a fake provider on loopback.
 */
export function startTestCluster(name: string, basePort: number): Promise<ClusterHandle> {
  return startCluster({
    basePort,
    databasePrefix: `mixroute_cluster_${name}`,
    dataDir: `.data/cluster-${name}`,
    fresh: true,
    dropOnStop: process.env.KEEP_TEST_DB !== '1',
    ui: false,
    env: {
      [UPSTREAM_KEY_ENV]: UPSTREAM_KEY,
      // The fake provider listens on loopback, which the gateway refuses unless named.
      UPSTREAM_ALLOWED_HOSTS: '127.0.0.1',
      GATEWAY_ROUTING_REFRESH_MS: '200',
      METERING_BATCH_MS: '100',
    },
  });
}
