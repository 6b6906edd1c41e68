# Hydra reads these configs as the package seq2seq.conf; importing it registers the schemas
# that each group's `defaults` names (types, defaults and allowed values of every key).
from seq2seq.config import register_schemas

register_schemas()
