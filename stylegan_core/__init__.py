from stylegan_core.checkpoint import checkpoint_info, load_checkpoint, load_generator, save_checkpoint, save_generator
