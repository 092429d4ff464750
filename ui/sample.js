// A workflow every ComfyUI can run without models: EmptyImage -> ImageBlur -> ImageInvert -> SaveImage.

/** The sample in API format; a random colour so repeated runs are not answered from ComfyUI's cache. */
export function sampleWorkflow() {
  const color = Math.floor(Math.random() * 0xffffff);
  return {
    1: { class_type: "EmptyImage", inputs: { width: 512, height: 512, batch_size: 1, color } },
    2: { class_type: "ImageBlur", inputs: { image: ["1", 0], blur_radius: 2, sigma: 1.0 } },
    3: { class_type: "ImageInvert", inputs: { image: ["2", 0] } },
    4: { class_type: "SaveImage", inputs: { images: ["3", 0], filename_prefix: "gateway_sample" } },
  };
}
