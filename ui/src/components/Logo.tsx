// The StormOps mark: a lightning bolt on a roof, drawn inline so it needs no font or file.

export function Logo({ size = 22 }: { size?: number }) {
  return (
    <svg width={size} height={size} viewBox="0 0 24 24" aria-hidden="true" class="logo">
      <rect width="24" height="24" rx="5" fill="#f59f00" />
      <path d="M3.5 12.5 12 5l8.5 7.5" fill="none" stroke="#17324f" stroke-width="2.2" stroke-linejoin="round" stroke-linecap="round" />
      <path d="M13 9.5 9.5 15h3l-1.5 5 4.5-6.5h-3l1.5-4z" fill="#17324f" />
    </svg>
  );
}
