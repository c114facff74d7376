/**
 * Drops files on an element as a user dragging them from their desktop would: dragenter,
 * dragover and drop events carrying a DataTransfer with the files, made inside the page.
 */
import type { Page } from "playwright-core";

export type DroppedFile = { name: string; type: string; bytes: Uint8Array };

export async function dropFiles(page: Page, selector: string, files: DroppedFile[]): Promise<void> {
  const transfer = await page.evaluateHandle(
    (list) => {
      // The page's own class (this file is type-checked without the DOM's types).
      const { DataTransfer } = globalThis as unknown as {
        DataTransfer: new () => { items: { add(file: File): void } };
      };
      const data = new DataTransfer();
      for (const f of list)
        data.items.add(new File([new Uint8Array(f.bytes)], f.name, { type: f.type }));
      return data;
    },
    files.map((f) => ({ ...f, bytes: [...f.bytes] })),
  );
  for (const type of ["dragenter", "dragover", "drop"]) {
    await page.dispatchEvent(selector, type, { dataTransfer: transfer });
  }
}
