/**
 * The browser the console tests drive: Debian's chromium (.ci/run installs it), headless,
 * through playwright-core, which downloads no browser of its own.
 */
import { existsSync } from "node:fs";
import { type Browser, chromium } from "playwright-core";

const CHROMIUM = "/usr/bin/chromium";

export function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`no ${CHROMIUM}: install Debian's chromium (apt-get install chromium)`);
  }
  return chromium.launch({ executablePath: CHROMIUM, headless: true });
}
