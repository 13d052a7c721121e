import { escapeHtml, renderInstalledPage, renderInstallFailedPage } from './install-page';

describe('install pages', () => {
  it('loads the BX24 library and finishes the installation', () => {
    const html = renderInstalledPage('example.bitrix24.com');
    expect(html).toContain('<script src="//api.bitrix24.com/api/v1/"></script>');
    expect(html).toContain('BX24.installFinish()');
    expect(html).toContain('example.bitrix24.com');
  });

  it('escapes everything it interpolates', () => {
    const hostile = '<script>alert("x")</script>&\'';
    expect(renderInstalledPage(hostile)).not.toContain('<script>alert');
    const failed = renderInstallFailedPage(hostile);
    expect(failed).not.toContain('<script>alert');
    expect(failed).toContain('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;');
  });

  it('does not finish the installation on failure', () => {
    const html = renderInstallFailedPage('Bitrix24 did not confirm this installation.');
    expect(html).not.toContain('installFinish');
    expect(html).toContain('Bitrix24 did not confirm this installation.');
  });

  it('escapes the five HTML metacharacters', () => {
    expect(escapeHtml(`&<>"'`)).toBe('&amp;&lt;&gt;&quot;&#39;');
  });
});
