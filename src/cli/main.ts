export async function main(argv: string[]): Promise<number> {
  process.stdout.write(`vmaccess ${argv.join(' ')}\n`);
  return 0;
}
