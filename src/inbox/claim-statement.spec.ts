import { withParametersWritten } from '../database/one-round-trip';
import { CLAIM_DUE_SQL, CLAIM_PLANNER_SETTINGS_SQL, claimStatements } from './inbox-worker.service';

describe('the claim in one round trip', () => {
  it('sends the planner settings first, then the claim with its three parameters written in', () => {
    const [settings, claim] = claimStatements(32, 30, 8);
    expect(settings).toEqual({ sql: CLAIM_PLANNER_SETTINGS_SQL, params: [] });
    const written = withParametersWritten(claim);
    expect(written).not.toMatch(/\$\d/);
    expect(written).toBe(
      CLAIM_DUE_SQL.replace('$1', "'32'").replace(/\$2/g, "'30'").replace('$3', "'8'"),
    );
  });
});
