import { CLAIM_DUE_SQL, claimScript, claimStatement } from './inbox-worker.service';

describe('the claim as one query string', () => {
  it('writes the three integers where the parameters were, and nothing else changes', () => {
    const statement = claimStatement(32, 30, 8);
    expect(statement).not.toMatch(/\$\d/);
    expect(statement).toContain('LIMIT 32');
    expect(statement).toContain('c.attempts < 8');
    expect(statement).toContain('make_interval(secs => 30)');
    expect(statement).toBe(
      CLAIM_DUE_SQL.replace('$1', '32').replace(/\$2/g, '30').replace('$3', '8'),
    );
  });

  it('refuses anything but non-negative integers, so no text ever reaches the statement', () => {
    for (const bad of [1.5, -1, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 60]) {
      expect(() => claimStatement(bad, 30, 8)).toThrow(/non-negative integers/);
      expect(() => claimStatement(32, bad, 8)).toThrow(/non-negative integers/);
      expect(() => claimStatement(32, 30, bad)).toThrow(/non-negative integers/);
    }
  });

  it('puts the planner settings first, in the same string', () => {
    const script = claimScript(32, 30, 8);
    expect(script.indexOf("set_config('enable_bitmapscan', 'off', true)")).toBeGreaterThanOrEqual(
      0,
    );
    expect(script.indexOf('UPDATE stored_events')).toBeGreaterThan(
      script.indexOf("set_config('enable_seqscan', 'off', true)"),
    );
  });
});
