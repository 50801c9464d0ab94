import { dataKey } from '../shared/dataKey';

/** The key that seals endpoint secrets at rest: WEBHOOK_SECRET_KEY (base64, 32 bytes), or DATA_DIR/secrets/webhook-secret.key. */
export function webhookSecretKey(config: { secretKey: string | undefined; dataDir: string }): Buffer {
  return dataKey({ value: config.secretKey, setting: 'WEBHOOK_SECRET_KEY', dataDir: config.dataDir, file: 'webhook-secret.key' });
}
