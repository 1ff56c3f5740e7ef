from stylegan_core.checkpoint import (
    checkpoint_info,
    load_checkpoint,
    load_discriminator,
    load_generator,
    save_checkpoint,
    save_generator,
)
from stylegan_core.discriminator import Discriminator, DiscriminatorConfig
from stylegan_core.generator import Generator, GeneratorConfig, mixing_regularization, style_mix
from stylegan_core.mapping import MappingConfig, MappingNetwork, truncate
from stylegan_core.presets import PRESETS, Preset, get_preset
from stylegan_core.synthesis import NOISE_MODES, SynthesisConfig, SynthesisNetwork
from stylegan_core.attributes import AttributeTable, read_attributes
from stylegan_core.data import ImageDataset, open_dataset
from stylegan_core.synthetic import SYNTH_ATTRIBUTES, synthesize_dataset
from stylegan_core.sampling import generate_images, image_grid, save_image_grid, style_mixing_figure, z_from_seeds
from stylegan_core.schedule import SCHEDULES, TrainingConfig, schedule_at, training_config
from stylegan_core.training import TrainResult, train
from stylegan_core.interface import GeneratorInterface, GeneratorInterfaceError, check_generator, generator_from_callable
