/** Tailwind 3.4: scans templates, our JS and Python (class names built in code). */
module.exports = {
  // Dark when <html> has class="dark" (the server sets it for an account that chose dark;
  // theme.js for "system" on a dark device), and without JavaScript when the page follows the
  // system (data-theme="system") and the device is dark.
  darkMode: [
    "variant",
    [
      "&:is(.dark *)",
      "@media (prefers-color-scheme: dark) { &:is([data-theme=system]:not(.light) *) }",
    ],
  ],
  content: ["templates/**/*.html", "static/js/**/*.js", "app/**/*.py"],
  theme: {
    extend: {
      fontFamily: {
        sans: ["ui-sans-serif", "system-ui", "-apple-system", "Segoe UI", "Roboto", "Helvetica Neue", "Arial", "sans-serif"],
      },
    },
  },
  plugins: [require("@tailwindcss/forms")],
};
