//! Server-made thumbnails of image uploads, with a bounded decode: the image's size is
//! read from its header first and an image of more than `--upload-max-pixels` pixels is
//! refused before any pixel is decoded (a small PNG can claim 100,000 × 100,000 pixels:
//! a decompression bomb). CPU-bound: callers run it on `spawn_blocking`.

use std::io::Cursor;

use image::{DynamicImage, ImageFormat, ImageReader, Limits};

/// Longest side of a thumbnail, in pixels.
pub const THUMBNAIL_SIDE: u32 = 320;

/// A decoded image's size and its thumbnail.
#[derive(Debug)]
pub struct Thumbnail {
    pub width: u32,
    pub height: u32,
    /// PNG when the image has transparency, else JPEG.
    pub bytes: Vec<u8>,
}

/// Why no thumbnail was made.
#[derive(Debug, thiserror::Error)]
pub enum ThumbnailError {
    /// The header claims more pixels than allowed: refused, nothing decoded.
    #[error("the image is {width}×{height} pixels, more than the {max} allowed")]
    TooManyPixels { width: u32, height: u32, max: u64 },
    /// Not decodable as the type its bytes claim (truncated, corrupt, unsupported).
    #[error("cannot decode the image: {0}")]
    Undecodable(String),
}

/// Decodes `bytes` as `content_type` (one of [`super::sniff::INLINE_IMAGES`]) and
/// makes its thumbnail, refusing images of more than `max_pixels`.
pub fn make(
    bytes: &[u8],
    content_type: &str,
    max_pixels: u64,
) -> Result<Thumbnail, ThumbnailError> {
    let undecodable = |err: image::ImageError| ThumbnailError::Undecodable(err.to_string());
    let format = ImageFormat::from_mime_type(content_type)
        .ok_or_else(|| ThumbnailError::Undecodable(format!("{content_type} is not an image")))?;
    let reader = |limits: Limits| {
        let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
        reader.limits(limits);
        reader
    };
    // The header alone: no pixel buffer is allocated yet.
    let (width, height) = reader(Limits::default())
        .into_dimensions()
        .map_err(undecodable)?;
    if u64::from(width) * u64::from(height) > max_pixels {
        return Err(ThumbnailError::TooManyPixels {
            width,
            height,
            max: max_pixels,
        });
    }
    let mut limits = Limits::default();
    limits.max_image_width = Some(width);
    limits.max_image_height = Some(height);
    // Room for the RGBA16 buffer of an image of the allowed size, and no more.
    limits.max_alloc = Some(max_pixels.saturating_mul(8).max(1 << 20));
    let image = reader(limits).decode().map_err(undecodable)?;
    let thumb = image.thumbnail(THUMBNAIL_SIDE, THUMBNAIL_SIDE);
    let bytes = encode(&thumb).map_err(undecodable)?;
    Ok(Thumbnail {
        width,
        height,
        bytes,
    })
}

/// The content type [`make`] encodes a thumbnail in, from its bytes.
pub fn content_type(thumbnail: &[u8]) -> &'static str {
    if thumbnail.starts_with(b"\x89PNG") {
        "image/png"
    } else {
        "image/jpeg"
    }
}

fn encode(thumb: &DynamicImage) -> Result<Vec<u8>, image::ImageError> {
    let mut out = Cursor::new(Vec::new());
    if thumb.color().has_alpha() {
        thumb.to_rgba8().write_to(&mut out, ImageFormat::Png)?;
    } else {
        let encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 80);
        thumb.to_rgb8().write_with_encoder(encoder)?;
    }
    Ok(out.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(width: u32, height: u32, alpha: bool) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        if alpha {
            image::RgbaImage::from_pixel(width, height, image::Rgba([10, 20, 30, 128]))
                .write_to(&mut out, ImageFormat::Png)
                .expect("encode");
        } else {
            image::RgbImage::from_pixel(width, height, image::Rgb([200, 10, 10]))
                .write_to(&mut out, ImageFormat::Png)
                .expect("encode");
        }
        out.into_inner()
    }

    #[test]
    fn thumbnails_keep_the_aspect_and_the_transparency() {
        let thumb = make(&png(800, 400, false), "image/png", 1_000_000).expect("thumbnail");
        assert_eq!((thumb.width, thumb.height), (800, 400));
        assert_eq!(content_type(&thumb.bytes), "image/jpeg");
        let decoded = image::load_from_memory(&thumb.bytes).expect("decodes");
        assert_eq!((decoded.width(), decoded.height()), (320, 160));

        let thumb = make(&png(50, 60, true), "image/png", 1_000_000).expect("thumbnail");
        assert_eq!(content_type(&thumb.bytes), "image/png");
    }

    #[test]
    fn too_many_pixels_are_refused_from_the_header() {
        let err = make(&png(100, 100, false), "image/png", 9_999).expect_err("over the limit");
        assert!(matches!(
            err,
            ThumbnailError::TooManyPixels {
                width: 100,
                height: 100,
                ..
            }
        ));
        // A header claiming a huge image with no data behind it: refused, not decoded.
        let mut bomb = png(1, 1, false);
        bomb[16..20].copy_from_slice(&100_000u32.to_be_bytes());
        bomb[20..24].copy_from_slice(&100_000u32.to_be_bytes());
        assert!(matches!(
            make(&bomb, "image/png", 40_000_000),
            Err(ThumbnailError::TooManyPixels { .. } | ThumbnailError::Undecodable(_))
        ));
        assert!(matches!(
            make(b"\x89PNG\r\n\x1a\ngarbage", "image/png", 100),
            Err(ThumbnailError::Undecodable(_))
        ));
    }
}
