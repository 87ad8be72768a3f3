export const ALS_VERSION = "0.1.0"
