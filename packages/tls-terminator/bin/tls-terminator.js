#!/usr/bin/env node
import { launch } from '@edgestack/common/launch'

await launch('tls-terminator', import.meta.url)
