/**
 * Ctrl-C: the CLI stops waiting, but work already handed to the edge goes on there. The command
 * that started it says how to find it again, and that is printed on the way out (exit 130).
 */
let hint: string | undefined;

export function onInterrupt(text: string | undefined): void {
  hint = text;
}

export function installInterruptHandler(): void {
  process.once("SIGINT", () => {
    process.stderr.write(`\ninterrupted${hint ? `: ${hint}` : ""}\n`);
    process.exit(130);
  });
}
