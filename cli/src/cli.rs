//! The command line: clap definitions only (no behaviour).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

const AFTER_HELP: &str = "\
Examples:
  shmframe gen matrix --rows 1000000 --cols 32 --dtype f64 --seed 42 --out x.npy
  shmframe run l2-norm --input x.npy --workers 4 --out norms.npy
  shmframe run cosine --input x.npy --query q.npy --json
  shmframe run sum --input table.csv --columns a,b,c
  shmframe load x.arrow --name embeddings     # prints /dev/shm/shmframe.embeddings
  shmframe run l2-norm --input shm:embeddings
  shmframe ls
  shmframe rm embeddings
  shmframe gc                                  # removes segments of dead processes
  shmframe demo                                # benchmark on a 2M x 32 f64 matrix
  shmframe resize photos/ thumbs/ --size 256x256 --json

Kernels: l1-norm l2-norm linf-norm sum mean min max var std dot cosine normalize

Environment:
  SHMFRAME_DIR   segment directory (default /dev/shm); --segment-dir overrides it
  RUST_LOG       tracing filter (e.g. shmframe=debug); -v / -vv raise the default level

Exit status: 0 success, 1 runtime failure, 2 bad usage or bad input, 3 some images failed
(resize).";

/// shmframe: a zero-copy shared-memory dataframe engine with a pool of forked workers.
#[derive(Debug, Parser)]
#[command(name = "shmframe", version, about, after_help = AFTER_HELP)]
pub(crate) struct Cli {
    /// More logging on stderr (-v info, -vv debug); RUST_LOG takes precedence.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub(crate) verbose: u8,
    /// Segment directory (default: $SHMFRAME_DIR, else /dev/shm).
    #[arg(long, global = true, value_name = "DIR")]
    pub(crate) segment_dir: Option<PathBuf>,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Generate synthetic data files.
    #[command(subcommand)]
    Gen(GenCommand),
    /// Run a row kernel over a matrix column (or across several columns) with the worker pool.
    #[command(after_help = RUN_HELP)]
    Run(RunArgs),
    /// Load a file into a named, persistent shared-memory segment (Arrow IPC file layout).
    #[command(
        after_help = "Example:\n  shmframe load x.npy --name emb\n  python -c \"import pyarrow as pa; \
print(pa.ipc.open_file(pa.memory_map('/dev/shm/shmframe.emb')).read_all())\""
    )]
    Load(LoadArgs),
    /// List shmframe segments: name, kind, size, owner and schema.
    Ls,
    /// Remove segments by name (NAME, shm:NAME or the full shmframe.… name).
    Rm {
        /// Segment names.
        #[arg(required = true, value_name = "NAME")]
        names: Vec<String>,
    },
    /// Remove segments whose owning process is dead (never a live or persistent one).
    Gc,
    /// Benchmark: the pool against a single process on one matrix, results cross-checked.
    Demo(DemoArgs),
    /// Resize a folder of images (JPEG, PNG, WebP) with the worker pool: pixels into a shared
    /// tensor frame, files into OUT_DIR.
    #[cfg(feature = "image")]
    #[command(after_help = RESIZE_HELP)]
    Resize(ResizeArgs),
}

const RESIZE_HELP: &str = "\
Output files mirror the input names (relative to IN_DIR) with the format's extension, each
written to a temporary name and renamed. Two inputs that would make one output name (a.jpg
and a.png -> a.jpg) stop the job before it starts; with --keep-extension they are written as
a.jpg.jpg and a.png.jpg. Images that fail (corrupt, truncated, empty, not an image,
unsupported, over --max-pixels) are listed on stderr and in --json; the others are done.

Images are turned upright as Pillow's ImageOps.exif_transpose does: the EXIF orientation of
JPEG (APP1), PNG (eXIf before or after the image data, or the legacy \"Raw profile type exif\"
text) and WebP (EXIF chunk), else an XMP tiff:Orientation.

Exit status: 0 all done, 3 some images failed, 1 runtime failure, 2 bad usage.

Examples:
  shmframe resize photos/ thumbs/ --size 256x256 --workers 4
  shmframe resize photos/ thumbs/ --size 320x240 --fit cover --format webp --recursive
  shmframe resize photos/ thumbs/ --size 256x256 --json --tensor-out pixels.arrow
  shmframe resize icons/ out/ --size 64x64 --format png --keep-alpha --keep-extension";

const RUN_HELP: &str = "\
Inputs: .npy .arrow .feather .parquet .csv, or shm:NAME for a loaded segment.
The default column is `x` if present, else the first FixedSizeList column.

Examples:
  shmframe run l2-norm --input x.npy
  shmframe run normalize --input x.arrow --out unit.arrow
  shmframe run dot --input x.npy --query q.npy --out scores.parquet
  shmframe run mean --input t.csv --columns a,b,c --json";

#[derive(Debug, Subcommand)]
pub(crate) enum GenCommand {
    /// A reproducible random matrix (same seed, same bytes, whatever the thread count).
    #[command(
        after_help = "Example:\n  shmframe gen matrix --rows 2000000 --cols 32 --dtype f64 --seed 42 --out x.npy"
    )]
    Matrix(GenMatrixArgs),
}

#[derive(Debug, Args)]
pub(crate) struct GenMatrixArgs {
    /// Rows.
    #[arg(long)]
    pub(crate) rows: usize,
    /// Columns.
    #[arg(long)]
    pub(crate) cols: usize,
    /// Element type.
    #[arg(long, value_enum, default_value_t = Dtype::F64)]
    pub(crate) dtype: Dtype,
    /// Seed.
    #[arg(long, default_value_t = 42)]
    pub(crate) seed: u64,
    /// Distribution of the values.
    #[arg(long, value_enum, default_value_t = Dist::Gaussian)]
    pub(crate) dist: Dist,
    /// Output file: .npy or .arrow (one FixedSizeList column `x`, one record batch).
    #[arg(long)]
    pub(crate) out: PathBuf,
}

/// Element types of generated data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Dtype {
    /// 32-bit float.
    F32,
    /// 64-bit float.
    F64,
}

/// Value distributions of generated data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Dist {
    /// Standard normal.
    Gaussian,
    /// Uniform in [-1, 1).
    Unit,
    /// Heavy-tailed: a standard normal divided by sqrt of a uniform (0, 1] (infinite variance).
    Heavy,
}

/// How the pool's workers are started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Start {
    /// fork() the coordinator (fast).
    Fork,
    /// Re-execute this binary as each worker.
    Spawn,
}

#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// Kernel: l1-norm l2-norm linf-norm sum mean min max var std dot cosine normalize.
    pub(crate) kernel: String,
    /// Input: shm:NAME or a file: .npy, Arrow IPC file or stream (Feather v2), Parquet or CSV,
    /// recognised by content (the extension is a hint).
    #[arg(long, short)]
    pub(crate) input: String,
    /// The most bytes decoding the input file may produce (K/M/G suffixes; default: physical
    /// memory).
    #[arg(long, value_name = "BYTES", value_parser = crate::commands::parse_bytes)]
    pub(crate) load_limit: Option<u64>,
    /// The matrix column (default: `x`, else the first FixedSizeList column, else every
    /// numeric column: the kernel then runs across them per row).
    #[arg(long, conflicts_with = "columns")]
    pub(crate) column: Option<String>,
    /// Several numeric columns, comma-separated: the kernel runs across them per row.
    #[arg(long, value_delimiter = ',')]
    pub(crate) columns: Option<Vec<String>>,
    /// The worker pool.
    #[command(flatten)]
    pub(crate) pool: PoolArgs,
    /// Query vector for dot / cosine: a 1-D .npy of length cols.
    #[arg(long)]
    pub(crate) query: Option<PathBuf>,
    /// Write the result: .npy, .arrow or .parquet (by extension).
    #[arg(long, short)]
    pub(crate) out: Option<PathBuf>,
    /// Print one JSON object on stdout instead of the summary.
    #[arg(long)]
    pub(crate) json: bool,
    /// Rows per chunk (default: about 8 chunks per worker).
    #[arg(long)]
    pub(crate) chunk_rows: Option<usize>,
}

/// Options of the worker pool and its job, shared by `run` and `resize`.
#[derive(Debug, Args)]
pub(crate) struct PoolArgs {
    /// Worker processes (default: available cores).
    #[arg(long, short)]
    pub(crate) workers: Option<usize>,
    /// Cancel the job after this many milliseconds.
    #[arg(long)]
    pub(crate) deadline_ms: Option<u64>,
    /// How workers are started.
    #[arg(long, value_enum, default_value_t = Start::Fork)]
    pub(crate) start_method: Start,
    /// Testing only: each worker sleeps this long per chunk (per image for resize).
    #[arg(long, hide = true)]
    pub(crate) test_chunk_sleep_ms: Option<u64>,
}

#[derive(Debug, Args)]
pub(crate) struct LoadArgs {
    /// File to load: .npy, Arrow IPC file or stream (Feather v2), Parquet or CSV, recognised
    /// by content (the extension is a hint).
    pub(crate) file: PathBuf,
    /// The most bytes decoding the file may produce (K/M/G suffixes; default: physical memory).
    #[arg(long, value_name = "BYTES", value_parser = crate::commands::parse_bytes)]
    pub(crate) load_limit: Option<u64>,
    /// Segment name (letters, digits, `_`, `-`; starts with a letter).
    #[arg(long)]
    pub(crate) name: String,
}

#[derive(Debug, Args)]
pub(crate) struct ResizeArgs {
    /// Folder of input images.
    pub(crate) in_dir: PathBuf,
    /// Folder for the resized files (created if missing).
    pub(crate) out_dir: PathBuf,
    /// Output size, WIDTHxHEIGHT.
    #[arg(long, default_value = "256x256")]
    pub(crate) size: String,
    /// How the image fits the size.
    #[arg(long, value_enum, default_value_t = FitArg::Exact)]
    pub(crate) fit: FitArg,
    /// Resampling filter.
    #[arg(long, value_enum, default_value_t = FilterArg::Lanczos3)]
    pub(crate) filter: FilterArg,
    /// Output file format.
    #[arg(long, value_enum, default_value_t = FormatArg::Jpeg)]
    pub(crate) format: FormatArg,
    /// JPEG quality, 1-100 (PNG and WebP are lossless).
    #[arg(long, default_value_t = 90)]
    pub(crate) quality: u8,
    /// Keep alpha (RGBA out, resampled premultiplied) instead of flattening it over white
    /// (RGB out). JPEG files have no alpha: they get the RGBA composited over white.
    #[arg(long)]
    pub(crate) keep_alpha: bool,
    /// Keep the source extension in output names: a.png -> a.png.jpg (default: a.jpg). Lets
    /// a.jpg and a.png of one folder both through (otherwise refused before the job starts).
    #[arg(long)]
    pub(crate) keep_extension: bool,
    /// Refuse images with more pixels than this (decompression bombs).
    #[arg(long, default_value_t = 100_000_000)]
    pub(crate) max_pixels: u64,
    /// JPEG: decoded pixels per output pixel kept by the reduced DCT decode (0: full decode).
    #[arg(long, default_value_t = 2.0)]
    pub(crate) oversample: f32,
    /// JPEG: progressive files are read at reduced scale from their first scans only (the DC
    /// scans at 1/8, else the DC and first AC scans without the AC refinement scans), at the
    /// smallest scale keeping this many decoded pixels per output pixel (0: libjpeg decodes
    /// every scan, at the --oversample scale).
    #[arg(long, default_value_t = 1.0)]
    pub(crate) progressive_oversample: f32,
    /// JPEG: decode progressive files with libjpeg, every scan (the same as
    /// --progressive-oversample 0).
    #[arg(long, alias = "no-progressive-dc")]
    pub(crate) no_progressive_shortcut: bool,
    /// The worker pool.
    #[command(flatten)]
    pub(crate) pool: PoolArgs,
    /// Descend into subfolders.
    #[arg(long, short)]
    pub(crate) recursive: bool,
    /// Print one JSON object on stdout instead of the summary.
    #[arg(long)]
    pub(crate) json: bool,
    /// Also write the pixel frame (path, image tensor, source sizes) as an Arrow IPC file.
    #[arg(long, value_name = "FILE.arrow")]
    pub(crate) tensor_out: Option<PathBuf>,
}

/// `--fit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum FitArg {
    /// Stretch to the size (aspect not kept).
    Exact,
    /// Fit inside, pad the rest.
    Contain,
    /// Fill, crop the overflow.
    Cover,
}

/// `--filter`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum FilterArg {
    /// Lanczos, 3 lobes.
    Lanczos3,
    /// Bicubic (Catmull-Rom).
    Bicubic,
    /// Bilinear.
    Bilinear,
    /// Nearest neighbour.
    Nearest,
}

/// `--format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum FormatArg {
    /// JPEG.
    Jpeg,
    /// PNG.
    Png,
    /// WebP (lossless).
    Webp,
}

#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// Rows of the demo matrix (default 2,000,000).
    #[arg(long)]
    pub(crate) rows: Option<usize>,
    /// Columns of the demo matrix (default 32).
    #[arg(long)]
    pub(crate) cols: Option<usize>,
    /// Worker processes (default: available cores).
    #[arg(long, short)]
    pub(crate) workers: Option<usize>,
}
