/** Pixels on the page, drawn at a readable size without smoothing (a 32×32 image stays sharp). */
import { useEffect, useRef } from "preact/hooks";

const SHOWN_PX = 128;

export function PixelCanvas({ image, label }: { image: ImageData; label: string }) {
  const canvas = useRef<HTMLCanvasElement>(null);
  useEffect(() => {
    canvas.current?.getContext("2d")?.putImageData(image, 0, 0);
  }, [image]);
  return (
    <canvas
      ref={canvas}
      class="pixels"
      width={image.width}
      height={image.height}
      style={{ width: `${SHOWN_PX}px`, height: `${(SHOWN_PX * image.height) / image.width}px` }}
      aria-label={label}
      role="img"
    />
  );
}
